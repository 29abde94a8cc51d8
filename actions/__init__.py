"""Custom actions of the sciatica assistant, one module per concern.

- conversation.py:      greeting (what the assistant is, the emergency note)
- clinic_questions.py:  price/hours/location/... answered from clinic.yml
- booking.py:           the booking form, and sending the request
- booking_parsers.py:   reading days, times, names, phone numbers out of text
- handover.py:          hand a visitor over to the clinic's staff
- fallback.py:          honest "I'm not sure" with the closest topics
- red_flags.py:         escalating red-flag symptoms
- faq_catalog.py:       the FAQ titles, read from data/faq/
- clinic_settings.py:   loading and checking clinic.yml (the one place for clinic details)
- outbox.py:            store-then-send of everything that leaves the assistant
- signing.py:           HMAC signatures on those requests
- staff_notifications.py: alerts to the staff webhook
- startup.py:           stops the action server at start if clinic.yml is wrong
"""
