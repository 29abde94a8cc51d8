"""The safety check (a suspected red flag) and the FAQ answer with a "did you mean", run with real
rasa_sdk Tracker and CollectingDispatcher objects."""
from __future__ import annotations

from rasa_sdk import Tracker

from actions.faq_answer import ActionAnswerFaq
from actions.faq_catalog import titles
from actions.outbox import Outbox
from actions.red_flags import ActionAnswerSafetyCheck, ActionEscalateRedFlag
from tests.conftest import make_tracker, run_action
from tests.test_actions import outbox_path, red_flag_tracker, texts  # noqa: F401  (fixture)


def answer_tracker(text, intent, previous_bot_text, check):
    """The visitor's `text` right after the assistant said `previous_bot_text`."""
    tracker = make_tracker(text, intent, slots={"safety_check": check})
    tracker.events = [{"event": "user", "text": "earlier"}, {"event": "bot", "text": previous_bot_text},
                      *tracker.events]
    return tracker


def ask_safety_check(clinic_config, selected=None):
    clinic_config(staff_webhook_url="")
    ranking = [{"name": "report_red_flag", "confidence": 1.0}, {"name": "faq", "confidence": 0.8}]
    messages, events = run_action(ActionEscalateRedFlag(), red_flag_tracker(
        "found a mess in my pants, what should I wear to the massage", "unclear", selected=selected, ranking=ranking))
    [check] = [e["value"] for e in events if e.get("name") == "safety_check"]
    return messages, check


def test_a_suspected_red_flag_gets_a_safety_check_naming_the_signs_and_the_number(clinic_config, outbox_path):
    messages, check = ask_safety_check(clinic_config)
    said = messages[0]["text"]
    assert said.startswith("Before I answer, a quick safety check")
    for sign in ("groin", "bladder", "both legs", "chest pain", "call 911 now"):
        assert sign in said
    assert [b["title"] for b in messages[0]["buttons"]] == ["Yes, one of these", "No, none of these"]
    assert check == {"answer": None, "tier_before": None}


def test_yes_to_the_safety_check_is_escalated_as_an_emergency_and_staff_are_told(clinic_config, outbox_path):
    messages, check = ask_safety_check(clinic_config)
    reply, events = run_action(ActionAnswerSafetyCheck(),
                               answer_tracker("yes", "affirm", messages[0]["text"], check))
    assert texts(reply).startswith("Please call 911 now")
    assert {"event": "slot", "timestamp": None, "name": "red_flag_tier", "value": "emergency"} in events
    [alert] = Outbox(outbox_path).pending()
    assert '"tier": "emergency"' in alert["payload"]


def test_no_to_the_safety_check_answers_the_question_the_message_asked(clinic_config, outbox_path):
    selected = {"utter_action": "utter_faq/preparing_for_massage", "confidence": 0.9}
    messages, check = ask_safety_check(clinic_config, selected=selected)
    reply, events = run_action(ActionAnswerSafetyCheck(), answer_tracker("nope", "deny", messages[0]["text"], check))
    assert "Thank you for checking" in texts(reply) and "call 911" in texts(reply)
    assert reply[-1]["response"] == "utter_faq/preparing_for_massage"
    assert {"event": "slot", "timestamp": None, "name": "safety_check", "value": None} in events
    # The suspicion the visitor ruled out no longer holds up a booking.
    assert {"event": "slot", "timestamp": None, "name": "red_flag_tier", "value": None} in events
    assert Outbox(outbox_path).pending() == []


def test_a_yes_that_answers_something_else_is_not_an_emergency(clinic_config, outbox_path):
    messages, check = ask_safety_check(clinic_config)
    # The safety check was asked, but the assistant said something else since.
    reply, events = run_action(ActionAnswerSafetyCheck(),
                               answer_tracker("yes", "affirm", "Here's what I can help with.", check))
    assert [m["response"] for m in reply] == ["utter_yes_no_without_question"]
    assert events == [] and Outbox(outbox_path).pending() == []


def test_a_yes_out_of_the_blue_is_asked_about(clinic_config, outbox_path):
    clinic_config()
    reply, events = run_action(ActionAnswerSafetyCheck(), make_tracker("yes", "affirm"))
    assert [m["response"] for m in reply] == ["utter_yes_no_without_question"] and events == []


def faq_tracker(ranking):
    tracker = make_tracker("deep tissue or trigger point?", "faq", response_ranking=ranking)
    tracker.latest_message["response_selector"]["faq"]["response"] = {
        "utter_action": "utter_" + ranking[0]["intent_response_key"], "confidence": ranking[0]["confidence"]}
    return tracker


def test_two_close_answers_give_the_best_and_offer_the_other():
    ranking = [{"intent_response_key": "faq/technique_deep_tissue", "confidence": 0.52},
               {"intent_response_key": "faq/technique_trigger_point", "confidence": 0.41}]
    messages, _ = run_action(ActionAnswerFaq(), faq_tracker(ranking))
    assert messages[0]["response"] == "utter_faq/technique_deep_tissue"
    title = titles()["faq/technique_trigger_point"]
    assert messages[1]["text"] == "Or did you mean:"
    assert messages[1]["buttons"] == [{"title": title, "payload": title}]


def test_a_clear_answer_comes_alone():
    ranking = [{"intent_response_key": "faq/technique_deep_tissue", "confidence": 0.92},
               {"intent_response_key": "faq/technique_trigger_point", "confidence": 0.05}]
    messages, _ = run_action(ActionAnswerFaq(), faq_tracker(ranking))
    assert [m.get("response") for m in messages] == ["utter_faq/technique_deep_tissue"]


def test_a_tentative_answer_comes_with_the_next_two_as_buttons():
    ranking = [{"intent_response_key": "faq/what_to_wear", "confidence": 0.44},
               {"intent_response_key": "faq/preparing_for_massage", "confidence": 0.21},
               {"intent_response_key": "faq/aftercare", "confidence": 0.12},
               {"intent_response_key": "faq/walking", "confidence": 0.01}]
    tracker = faq_tracker(ranking)
    tracker.latest_message["faq_certainty"] = "tentative"
    messages, _ = run_action(ActionAnswerFaq(), tracker)
    assert messages[0]["response"] == "utter_faq/what_to_wear"
    catalog = titles()
    assert messages[1]["buttons"] == [{"title": catalog[k], "payload": catalog[k]}
                                      for k in ("faq/preparing_for_massage", "faq/aftercare")]


def test_both_questions_of_a_two_part_message_are_answered_without_a_menu():
    ranking = [{"intent_response_key": "faq/what_to_wear", "confidence": 0.81},
               {"intent_response_key": "faq/preparing_for_massage", "confidence": 0.1}]
    tracker = faq_tracker(ranking)
    tracker.latest_message["faq_answers"] = ["faq/what_to_wear", "faq/eating_and_drinking"]
    messages, _ = run_action(ActionAnswerFaq(), tracker)
    assert [m.get("response") for m in messages] == ["utter_faq/what_to_wear", "utter_faq/eating_and_drinking"]


def test_the_question_at_the_end_of_a_story_is_answered_and_not_offered_again():
    # The selector read the whole story as aftercare (unsure); its last question asks what to wear.
    ranking = [{"intent_response_key": "faq/aftercare", "confidence": 0.2},
               {"intent_response_key": "faq/what_to_wear", "confidence": 0.15},
               {"intent_response_key": "faq/walking", "confidence": 0.1}]
    tracker = faq_tracker(ranking)
    tracker.latest_message.update(faq_answers=["faq/what_to_wear"], faq_certainty="tentative")
    messages, _ = run_action(ActionAnswerFaq(), tracker)
    assert messages[0]["response"] == "utter_faq/what_to_wear"
    catalog = titles()
    assert messages[1]["buttons"] == [{"title": catalog[k], "payload": catalog[k]}
                                      for k in ("faq/aftercare", "faq/walking")]


def test_a_see_a_doctor_note_comes_after_every_answer_the_gate_let_through(clinic_config, outbox_path):
    clinic_config()
    tracker = red_flag_tracker("it's been hurting for weeks. what should I wear, and can I eat before?",
                               "see_doctor", ranking=[{"name": "report_red_flag", "confidence": 1.0}])
    tracker.latest_message.update(faq_certainty="tentative", faq_answers=["faq/what_to_wear", "faq/eating_and_drinking"])
    messages, _ = run_action(ActionEscalateRedFlag(), tracker)
    assert [m.get("response") for m in messages[:2]] == ["utter_faq/what_to_wear", "utter_faq/eating_and_drinking"]
    assert "worth showing a doctor" in messages[2]["text"]
