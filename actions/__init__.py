"""Custom actions of the sciatica assistant, one module per concern.

- conversation.py:     greeting (what the assistant is, the emergency note)
- clinic_questions.py: price/hours/location/... and booking, from clinic.yml
- handover.py:         hand a visitor over to the clinic's staff
- fallback.py:         honest "I'm not sure" with the closest topics
- faq_catalog.py:      the FAQ titles, read from data/faq/
- clinic_settings.py:  loading and checking clinic.yml
"""
