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


# --- false-alarm causes, each fixed at its root; the escalations next to them must hold ----------

@pytest.mark.parametrize("text", [
    "both legs are dead after my first crossfit class",    # tiredness after sport
    "legs feel like jelly after spin class, can I book a sports massage?",
    "total couch potato this week, my bum is numb from sitting on the sofa lol",  # sitting still
    "I nearly wet myself laughing at the comedy show",      # "nearly", and laughing
    "I have a weak bladder, can we take a break mid session?",  # an idiom, not a new control problem
    "on my feet all day, then I get home and crash on the couch. my lower back is killing me",  # sleep
    "I'm 28 weeks pregnant and have a sharp pain in my left buttock, why does pregnancy cause it?",
    "my sciatica flares up twice a year and settles, can I see a chiropractor and you too?",
    "can massage bring down swelling round the nerve, and does it do anything for circulation?",
    # "each" in the next sentence is not "each leg"
    "my sciatica goes down my right leg. Each time it settles after several days.",
])
def test_idioms_and_everyday_causes_do_not_escalate(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "I had a car crash yesterday and my back hurts",
    "tingling and pain in each leg since this morning",
    "I'm 28 weeks pregnant and my groin has gone numb",
])
def test_the_same_words_in_a_report_still_escalate(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "my mum's legs went numb last year and it turned out to be her diabetes",
    "my friend had cauda equina and lost control of her bladder, that scared me",
    "a friend of mine had saddle numbness and needed surgery, how do i know if i have it?",
    "my aunt had a stroke and her face drooped",
    "my dog is dragging his back leg and can't feel his back legs",
    "my friend had numb legs after a car crash, she's fine now",
])
def test_someone_elses_story_is_not_the_visitors_report(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "my husband can't feel his legs and has wet himself",   # a carer, for someone with them now
    "he's my dad and he can't feel his legs since this morning",
])
def test_a_carer_reporting_for_someone_now_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "i had numbness in both legs during my pregnancy but that's long gone",
    "I had a fall years ago, fully recovered, but my back is sore again",  # a pain back, not the fall
])
def test_past_episodes_that_resolved_do_not_escalate(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "I had bladder issues in 2019 that were fixed, but since yesterday i'm leaking again and can't stop it",
    "my bladder has not been normal since yesterday, i keep leaking",   # "not normal" is no resolution
    "bladder's not fine, i keep leaking",
])
def test_an_episode_that_is_back_or_not_resolved_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "neither leg feels weak or numb, it's just my hip",
    "neither of my legs is numb or weak",
    "zero numbness in my legs",
    "i haven't wet myself or anything",
    "i don't feel any numbness in my groin",
    "i didn't notice any numbness down there",
    "i have proper feeling in both legs",
])
def test_denials_in_all_forms_do_not_escalate(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "neither leg will hold me up",                          # a negated function is the symptom
    "i have no bladder control since this morning",
    "i dont have bladder control anymore",
    "i never know when i need to pee now, it just comes out",
])
def test_a_lost_function_said_with_a_negation_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "could sciatica make me incontinent?",
    "I read that numbness in your groin is an emergency, is that true?",
    "my physio told me to watch for numbness down there and bladder changes, what else should i look for?",
    "they say numbness in the groin is an emergency",
    "in case my legs get weak, who do i call?",
])
def test_hypotheticals_and_talk_about_the_signs_are_questions(detector, text):
    result = detector.detect(text)
    assert result.tier is None and result.is_question


@pytest.mark.parametrize("text, expected", [
    ("what does it mean if i can't feel my bum when i wipe? it started today", "emergency"),
    ("if i'm honest, i can't feel my bum at all", "emergency"),
    ("what if it's serious? my groin has been numb since yesterday", "emergency"),
    ("is it ok to book if i've got a fever and my back hurts?", "urgent"),  # "if" stating a fact
])
def test_a_question_around_a_real_report_still_escalates(detector, text, expected):
    assert tier(detector, text) == expected


@pytest.mark.parametrize("text", [
    "do I need to empty my bladder before the massage?",
    "can't find the toilet, which floor?",
    "I can't hold my pee for 90 minutes, can we do 60?",
    "i struggle to find parking, and where is the bathroom",
    "i can't stop going to the loo since i started drinking more water, is that good?",
    "I need to go to the bank first so can't make 10am, is 11 ok?",   # "need to go" somewhere else
])
def test_practical_toilet_questions_do_not_escalate(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "pins and needles in my leg and pain in my bum",
    "my bum cheek aches and my foot is numb",
    "pain in my buttock and tingling down to my toes",
])
def test_numbness_of_another_part_is_not_saddle_numbness(detector, text):
    # Numbness in one leg or foot is a see-a-doctor sign, not a cauda equina emergency.
    assert tier(detector, text) == "see_doctor"


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


@pytest.mark.parametrize("message", ["no numbness down there, bladder's fine, just a sore back",
                                     "my mum had bladder trouble years ago",
                                     "numb bum from the stadium bleachers but fine once I stood up"])
def test_a_sign_the_patterns_saw_and_ruled_out_is_marked_cleared(detector, message):
    # The learned layer needs a much surer guess to ask its safety check about these.
    detection = detector.detect(message)
    assert detection.tier is None and detection.cleared


@pytest.mark.parametrize("message", ["what should I wear to my massage?", "found a mess in my knickers"])
def test_a_message_without_any_sign_is_not_marked_cleared(detector, message):
    assert not detector.detect(message).cleared
