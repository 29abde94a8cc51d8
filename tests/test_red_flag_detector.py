"""The red-flag detector's rules, one behaviour at a time (no trained model needed)."""
import pytest
import yaml

from components.red_flags import PATTERNS_FILE, RedFlagDetector, detector_for
from spacy_pipeline.build import build


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    return detector_for(str(build(tmp_path_factory.mktemp("spacy") / "spacy_en")))


def tier(detector, text):
    return detector.detect(text).tier


@pytest.mark.parametrize("text", [
    "i cant pee properly since yesterday",                 # the negation is the symptom
    "i dont get the urge to wee anymore",
    "dont get the urge to poo now, it just happens",      # starts like "do ...?" but is a report
    "numb groin",                                          # text-speak, no verb
    "my inner thighs and privates feel numb, is that normal with sciatica??",
    "no fever, but i can't feel anything down there",      # negation in another clause
    "tingleing in both my legs since this morning",        # misspelled
    "fell off a ladder this morning and my back is agony",
])
def test_emergencies(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "no numbness at all, only a dull ache",
    "my bladder is totally normal",
    "no problems with my bladder or bowels",
    "my leg fell asleep on the train",
    "my bum went numb on the long drive but it was fine once i stood up",
    "I had a car accident years ago, fully recovered",
    "i dont have any fever",
    "my foot isn't dragging",
])
def test_harmless_mentions_do_not_escalate(detector, text):
    assert tier(detector, text) is None


def test_real_words_are_not_read_as_typos(detector):
    # "ladder" is one edit from "bladder": a fall from a ladder is trauma, not a bladder problem.
    assert detector.detect("fell off the ladder, back is killing me").signs == ["trauma"]


@pytest.mark.parametrize("text", ["what is cauda equina syndrome?", "can sciatica affect both legs?",
                                  "what does saddle numbness mean", "if someone had numbness in both legs what should they do"])
def test_questions_about_red_flags_are_information(detector, text):
    result = detector.detect(text)
    assert result.tier is None


def test_urgent_and_see_doctor_tiers(detector):
    assert tier(detector, "my back hurts and i've had a fever and chills") == "urgent"
    assert tier(detector, "my foot keeps dragging when i walk") == "urgent"
    assert tier(detector, "my sciatica has lasted about 6 weeks") == "see_doctor"


def test_the_most_serious_tier_wins(detector):
    assert tier(detector, "sciatica for 2 months and now i cant control my bladder") == "emergency"


def test_a_sign_with_an_unknown_concept_is_reported(detector, tmp_path):
    patterns = yaml.safe_load(PATTERNS_FILE.read_text())
    patterns["signs"].append({"name": "typo", "tier": "emergency", "all": ["numbb"]})
    with pytest.raises(ValueError, match="sign 'typo' has unknown concept"):
        RedFlagDetector(detector.nlp, patterns)


# --- the component: what happens to DIET's own red-flag guess ------------------------------

def component_message(text, ranking, faq_answer_confidence=None):
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": text})
    message.set("intent", dict(ranking[0]))
    message.set("intent_ranking", ranking)
    if faq_answer_confidence is not None:
        message.set("response_selector", {"faq": {"ranking": [
            {"intent_response_key": "faq/red_flag_signs", "confidence": faq_answer_confidence},
            {"intent_response_key": "faq/when_to_see_doctor", "confidence": 0.02}]}})
    return message


def test_an_untrusted_red_flag_guess_gives_way_to_a_sure_faq_answer_or_to_fallback():
    from components.red_flag_detector import RedFlagDetectorComponent

    component = RedFlagDetectorComponent(RedFlagDetectorComponent.get_default_config())  # build/spacy_en
    question = component_message("what is cauda equina syndrome?", [
        {"name": "report_red_flag", "confidence": 0.7}, {"name": "faq", "confidence": 0.25}],
        faq_answer_confidence=0.9)
    unsure_answer = component_message("what signs matter", [
        {"name": "report_red_flag", "confidence": 0.7}, {"name": "faq", "confidence": 0.25}],
        faq_answer_confidence=0.3)
    other = component_message("and when should i actually go and see a doctor about it", [
        {"name": "report_red_flag", "confidence": 0.7}, {"name": "cancel_booking", "confidence": 0.17}])
    component.process([question, unsure_answer, other])
    assert question.get("intent")["name"] == "faq"           # answered from the FAQ, no alert
    assert unsure_answer.get("intent")["name"] == "nlu_fallback"
    assert other.get("intent")["name"] == "nlu_fallback"     # never an unsure "never mind"
