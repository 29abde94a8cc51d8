"""scripts/check_conversations.py: what counts as a failed conversation test."""
from scripts.check_conversations import judge

FAILED = """version: "3.1"
stories:
- story: a booking (tests/conversations/test_booking.yml)
  steps:
  - intent: request_booking  # predicted: request_booking: book me a [deep tissue massage](technique)
  - action: booking_form
  - action: action_listen  # predicted: action_fallback_with_topics
- story: an faq (tests/conversations/test_core.yml)
  steps:
  - intent: faq/what_causes_sciatica  # predicted: nlu_fallback: and why does it happen
  - action: utter_faq  # predicted: action_fallback_with_topics
  - intent: faq/stretches  # predicted: faq/stretches: any [stretches](technique)
  - action: utter_faq  # predicted: action_fallback_with_topics
  - intent: ask_price
  - action: action_answer_clinic_question  # predicted: utter_faq
"""


def test_a_wrong_action_after_a_right_intent_is_a_dialogue_error():
    nlu_misses, dialogue_errors = judge(FAILED)
    assert dialogue_errors == [
        "a booking (tests/conversations/test_booking.yml): expected action_listen, predicted action_fallback_with_topics",
        "an faq (tests/conversations/test_core.yml): expected action_answer_clinic_question, predicted utter_faq",
    ]


def test_a_wrong_intent_is_an_nlu_miss_and_what_follows_is_not_blamed_on_the_dialogue():
    nlu_misses, _ = judge(FAILED)
    assert nlu_misses == ["an faq (tests/conversations/test_core.yml): 'and why does it happen' read as "
                          "nlu_fallback, expected faq/what_causes_sciatica"]
