"""The FAQ data keeps its promises: every question has its answer beside it,
answers fit a chat bubble, every button leads somewhere, and every FAQ is
covered by held-out examples and a test conversation."""
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DOMAIN_FORM_SLOTS = [slot for form in yaml.safe_load((ROOT / "domain.yml").read_text())["forms"].values()
                     for slot in form["required_slots"]]
FAQ_FILES = sorted((ROOT / "data" / "faq").glob("*.yml"))
MAX_ANSWER_CHARS = 500  # longer than this reads as a wall of text in a chat widget
MIN_EXAMPLES = 15


def load(path):
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def examples(block):
    return [line.strip()[2:].strip() for line in block.get("examples", "").splitlines() if line.strip().startswith("- ")]


def normalise(text):
    return re.sub(r"[^a-z0-9 ]", "", text.lower()).strip()


def training_examples():
    """intent -> examples, over all of data/."""
    found = {}
    for path in (ROOT / "data").rglob("*.yml"):
        for block in load(path).get("nlu") or []:
            if "intent" in block:
                found.setdefault(block["intent"], []).extend(examples(block))
    return found


def all_responses():
    responses = dict(load(ROOT / "domain.yml").get("responses") or {})
    for path in FAQ_FILES:
        responses.update(load(path).get("responses") or {})
    return responses


@pytest.mark.parametrize("path", FAQ_FILES, ids=lambda p: p.stem)
def test_each_faq_file_holds_one_question_and_its_answer(path):
    content = load(path)
    intents = [b["intent"] for b in content.get("nlu") or []]
    assert intents == [f"faq/{path.stem}"], "one FAQ per file, named after the file"
    assert list(content.get("responses") or {}) == [f"utter_faq/{path.stem}"], "its answer sits beside it"
    assert len(examples(content["nlu"][0])) >= MIN_EXAMPLES, f"needs at least {MIN_EXAMPLES} examples"


def test_answers_fit_a_chat_bubble():
    too_long = {
        name: len(variant["text"])
        for name, variants in all_responses().items()
        for variant in variants
        if len(variant.get("text", "")) > MAX_ANSWER_CHARS
    }
    assert not too_long, f"answers over {MAX_ANSWER_CHARS} characters: {too_long}"


def test_every_button_sends_a_message_the_assistant_was_trained_on():
    """Except the booking form's answer buttons: the form reads those itself
    (tests/test_booking.py checks each is understood)."""
    known = {normalise(e): intent for intent, exs in training_examples().items() for e in exs}
    form_answers = {f"utter_ask_{slot}" for slot in DOMAIN_FORM_SLOTS}
    broken = [
        (name, button["payload"])
        for name, variants in all_responses().items()
        if name not in form_answers
        for variant in variants
        for button in variant.get("buttons") or []
        if normalise(button["payload"]) not in known
    ]
    assert not broken, f"buttons whose payload is no training example: {broken}"


def test_no_example_is_listed_under_two_intents():
    owner = {}
    clashes = []
    for intent, exs in training_examples().items():
        for example in exs:
            key = normalise(example)
            if key in owner and owner[key] != intent:
                clashes.append((example, owner[key], intent))
            owner[key] = intent
    assert not clashes


def held_out():
    found = {}
    for path in (ROOT / "tests" / "nlu").glob("*.yml"):
        for block in load(path).get("nlu") or []:
            found.setdefault(block["intent"], []).extend(examples(block))
    return found


def test_held_out_examples_cover_every_intent_and_are_not_training_copies():
    training = training_examples()
    test = held_out()
    assert set(training) - set(test) == set(), "intents without held-out examples"
    train_set = {normalise(e) for exs in training.values() for e in exs}
    copies = [e for exs in test.values() for e in exs if normalise(e) in train_set]
    assert not copies, f"held-out examples copied from training data: {copies}"


def test_every_faq_has_a_test_conversation():
    tested = set()
    for path in (ROOT / "tests" / "conversations").glob("*.yml"):
        for story in load(path).get("stories") or []:
            # The story names the FAQ by its intent (faq/<name>); the action is utter_faq.
            tested.update(step.get("intent") for step in story["steps"])
    missing = sorted(f"faq/{p.stem}" for p in FAQ_FILES if f"faq/{p.stem}" not in tested)
    assert not missing, f"FAQs with no test conversation: {missing}"


# Answers after which a visitor naturally wants to book: each technique, which
# technique, how massage helps, how many sessions, massage alongside other care.
LEADS_TO_BOOKING = ["how_massage_helps", "massage_techniques", "which_technique", "how_many_sessions",
                    "massage_with_other_treatments"] + [p.stem for p in (ROOT / "data" / "faq").glob("technique_*.yml")]


@pytest.mark.parametrize("faq", LEADS_TO_BOOKING)
def test_answers_that_lead_to_booking_offer_it(faq):
    [variant, *_] = all_responses()[f"utter_faq/{faq}"]
    payloads = [b["payload"] for b in variant.get("buttons") or []]
    assert "I'd like to book a massage" in payloads


# --- SMS: long answers have a short variant for text messages ----------------------------------

SMS_LIMIT = 320   # two SMS segments; longer answers need a short variant
SMS_VARIANT = 300


@pytest.mark.parametrize("name", sorted(k for k in all_responses() if k.startswith("utter_faq/")))
def test_long_answers_have_a_short_sms_variant(name):
    variants = all_responses()[name]
    general = [v for v in variants if not v.get("channel")]
    sms = [v for v in variants if v.get("channel") == "twilio"]
    if len(general[0]["text"]) > SMS_LIMIT:
        assert len(sms) == 1 and len(sms[0]["text"]) <= SMS_VARIANT
    else:
        assert sms == []


def test_the_sms_variant_is_what_the_twilio_channel_gets():
    import asyncio

    from rasa.core.nlg import TemplatedNaturalLanguageGenerator
    from rasa.shared.core.trackers import DialogueStateTracker

    responses = all_responses()
    nlg = TemplatedNaturalLanguageGenerator(responses)
    tracker = DialogueStateTracker("sms-visitor", slots=[])
    name = "utter_faq/technique_trigger_point"
    sms = asyncio.run(nlg.generate(name, tracker, "twilio"))["text"]
    web = asyncio.run(nlg.generate(name, tracker, "socketio"))["text"]
    assert len(sms) <= SMS_VARIANT < len(web)
