"""The gate turns unsure FAQ answers into nlu_fallback and leaves sure ones alone."""
import numpy as np
import pytest
from rasa.shared.nlu.training_data.message import Message

from components.faq_confidence_gate import FaqConfidenceGate

GATE = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5, "ambiguity_threshold": 0.1})


def message(intent, ranking):
    return Message(
        data={
            "text": "some question",
            "intent": {"name": intent, "confidence": 0.97},
            "intent_ranking": [{"name": intent, "confidence": 0.97}],
            "response_selector": {
                "faq": {"ranking": [{"intent_response_key": k, "confidence": c} for k, c in ranking], "response": {}}
            },
        }
    )


def processed(intent, ranking):
    return GATE.process([message(intent, ranking)])[0]


def test_confident_answer_passes():
    m = processed("faq", [("faq/symptoms", 0.9), ("faq/what_is_sciatica", 0.05)])
    assert m.get("intent")["name"] == "faq"


def test_low_confidence_answer_falls_back_and_keeps_the_ranking():
    m = processed("faq", [("faq/technique_hot_stone", 0.3), ("faq/walking", 0.2)])
    assert m.get("intent")["name"] == "nlu_fallback"
    assert [r["name"] for r in m.get("intent_ranking")] == ["nlu_fallback", "faq"]
    assert m.get("response_selector")["faq"]["ranking"][0]["intent_response_key"] == "faq/technique_hot_stone"


def test_two_answers_too_close_to_call_fall_back():
    m = processed("faq", [("faq/stretches", 0.52), ("faq/exercises", 0.46)])
    assert m.get("intent")["name"] == "nlu_fallback"


TENTATIVE_GATE = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5,
                                     "tentative_threshold": 0.4, "ambiguity_threshold": 0.0})


def test_an_answer_just_under_the_threshold_is_given_as_tentative():
    [m] = TENTATIVE_GATE.process([message("faq", [("faq/what_to_wear", 0.45), ("faq/preparing_for_massage", 0.3)])])
    assert m.get("intent")["name"] == "faq"
    assert m.get("faq_certainty") == "tentative"
    assert "faq_certainty" in m.as_dict(only_output_properties=True)  # reaches the action server


def test_sure_and_too_unsure_answers_are_told_apart_from_tentative_ones():
    sure, unsure = TENTATIVE_GATE.process([message("faq", [("faq/what_to_wear", 0.8)]),
                                           message("faq", [("faq/what_to_wear", 0.35)])])
    assert sure.get("faq_certainty") == "sure"
    assert unsure.get("intent")["name"] == "nlu_fallback" and unsure.get("faq_certainty") is None


def test_without_a_tentative_threshold_nothing_is_tentative():
    m = processed("faq", [("faq/what_to_wear", 0.45), ("faq/preparing_for_massage", 0.1)])
    assert m.get("intent")["name"] == "nlu_fallback"


# --- how close the message is to the FAQ examples ------------------------------------------------

def embedded(intent, ranking, vector):
    from rasa.shared.nlu.training_data.features import Features

    m = message(intent, ranking)
    m.add_features(Features(np.asarray([vector], dtype=float), "sentence", "text", "SentenceEmbeddingFeaturizer"))
    return m


# Two FAQ examples' embeddings (unit length) in a 3-dimensional stand-in for the real space.
EXAMPLES = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], dtype=np.float32)
SIMILAR_GATE = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5,
                                   "tentative_threshold": 0.3, "tentative_similarity": 0.6,
                                   "off_topic_similarity": 0.45, "ambiguity_threshold": 0.0}, examples=EXAMPLES)


def test_a_confident_faq_far_from_every_example_is_off_topic():
    # "difference between a Roth IRA and a traditional IRA?" was an FAQ at 0.87 confidence.
    [m] = SIMILAR_GATE.process([embedded("faq", [("faq/is_it_sciatica", 0.87)], [0.3, 0.3, 0.9])])
    assert m.get("intent")["name"] == "out_of_scope"
    assert m.get("faq_similarity") < 0.45


def test_a_tentative_answer_needs_a_message_close_to_some_example():
    close, middling = SIMILAR_GATE.process([
        embedded("faq", [("faq/stretches", 0.35), ("faq/exercises", 0.2)], [0.8, 0.1, 0.3]),
        embedded("faq", [("faq/stretches", 0.35), ("faq/exercises", 0.2)], [0.5, 0.2, 0.8])])
    assert close.get("intent")["name"] == "faq" and close.get("faq_certainty") == "tentative"
    assert middling.get("intent")["name"] == "nlu_fallback"


def test_a_sure_answer_close_to_an_example_is_given():
    [m] = SIMILAR_GATE.process([embedded("faq", [("faq/stretches", 0.9)], [0.1, 0.95, 0.1])])
    assert m.get("intent")["name"] == "faq" and m.get("faq_certainty") == "sure"


def test_other_intents_are_untouched():
    m = processed("greet", [("faq/symptoms", 0.1)])
    assert m.get("intent")["name"] == "greet"


# --- a short yes or no is an answer --------------------------------------------------------------

def short_answer_message(text, ranking):
    from rasa.shared.nlu.training_data.message import Message

    message = Message(data={"text": text})
    message.set("intent", {"name": "nlu_fallback", "confidence": 0.5})
    message.set("intent_ranking", [{"name": "nlu_fallback", "confidence": 0.5}] + ranking)
    return message


def test_a_short_no_the_classifier_was_unsure_of_is_taken_as_deny():
    from components.short_answers import ShortAnswerClassifier

    ranking = [{"name": "deny", "confidence": 0.4}, {"name": "affirm", "confidence": 0.19}]
    [message] = ShortAnswerClassifier({"max_words": 6}).process([short_answer_message("No, none of these", ranking)])
    assert message.get("intent")["name"] == "deny"


def test_a_long_message_or_another_best_intent_still_falls_back():
    from components.short_answers import ShortAnswerClassifier

    component = ShortAnswerClassifier({"max_words": 6})
    long = short_answer_message("no numbness down there and my bladder is fine just a dull ache",
                                [{"name": "deny", "confidence": 0.4}])
    other = short_answer_message("no clue", [{"name": "out_of_scope", "confidence": 0.4},
                                             {"name": "deny", "confidence": 0.3}])
    assert [m.get("intent")["name"] for m in component.process([long, other])] == ["nlu_fallback", "nlu_fallback"]


# --- two classifiers agreeing ----------------------------------------------------------------------

AGREEING_GATE = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5,
                                    "tentative_threshold": 0.3, "tentative_similarity": 0.6,
                                    "off_topic_similarity": 0.45, "agreement_similarity": 0.6,
                                    "ambiguity_threshold": 0.0},
                                   examples=EXAMPLES, example_keys=["faq/massage_posture", "faq/walking"])


def test_an_unsure_answer_whose_own_example_is_closest_is_given_with_alternatives():
    # "could bodywork help me stop slouching": the right answer first, at 0.16, then a menu.
    [m] = AGREEING_GATE.process([embedded("faq", [("faq/massage_posture", 0.16), ("faq/cause_sitting_and_posture", 0.13)],
                                          [0.9, 0.1, 0.3])])
    assert m.get("intent")["name"] == "faq" and m.get("faq_certainty") == "tentative"


def test_an_unsure_answer_closest_to_another_answers_example_still_falls_back():
    [m] = AGREEING_GATE.process([embedded("faq", [("faq/massage_posture", 0.16), ("faq/walking", 0.13)],
                                          [0.1, 0.9, 0.3])])
    assert m.get("intent")["name"] == "nlu_fallback"


def test_agreement_needs_the_message_close_to_that_example():
    [m] = AGREEING_GATE.process([embedded("faq", [("faq/massage_posture", 0.16), ("faq/walking", 0.13)],
                                          [0.55, 0.1, 0.83])])
    assert m.get("intent")["name"] == "nlu_fallback"


# --- a longer message, question by question (the real embedding model) ------------------------------

MODEL = "all-MiniLM-L6-v2-int8"
KNOWN = [("what should I wear to my massage", "faq/what_to_wear"),
         ("what clothes do I need for the session", "faq/what_to_wear"),
         ("can I eat before my massage", "faq/eating_and_drinking"),
         ("should I have a big meal before the session", "faq/eating_and_drinking"),
         ("which stretches help sciatica", "faq/stretches"),
         ("what should I do after my massage", "faq/aftercare")]


@pytest.fixture(scope="module")
def reading_gate():
    from components.sentence_embeddings import encoder

    examples = encoder(MODEL).encode([text for text, _ in KNOWN])
    return FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5, "tentative_threshold": 0.3,
                              "tentative_similarity": 0.6, "agreement_similarity": 0.6, "off_topic_similarity": 0.2,
                              "part_similarity": 0.6, "second_answer_similarity": 0.7, "ambiguity_threshold": 0.0},
                             examples=examples, example_keys=[key for _, key in KNOWN])


def read(gate, text, ranking):
    from components.sentence_embeddings import encoder
    from components.sentence_featurizer import EMBEDDING_MODEL

    m = embedded("faq", ranking, encoder(MODEL).encode([text])[0])
    m.set("text", text)
    m.set(EMBEDDING_MODEL, MODEL)
    return gate.process([m])[0]


def test_both_questions_of_a_two_part_message_are_answered(reading_gate):
    m = read(reading_gate, "Hi! I'm booked on Thursday. What should I wear, and can I eat before the massage?",
             [("faq/what_to_wear", 0.8), ("faq/aftercare", 0.1)])
    assert m.get("intent")["name"] == "faq"
    assert m.get("faq_answers") == ["faq/what_to_wear", "faq/eating_and_drinking"]


def test_the_question_at_the_end_of_a_story_is_answered_instead_of_a_menu(reading_gate):
    story = ("I'm a nurse on twelve hour shifts and my partner keeps telling me to look after myself. Last week "
             "a sharp pain started in my bum and went down my thigh. Which stretches would help me at home?")
    m = read(reading_gate, story, [("faq/aftercare", 0.2), ("faq/what_to_wear", 0.15)])
    assert m.get("intent")["name"] == "faq" and m.get("faq_certainty") == "tentative"
    assert m.get("faq_answers") == ["faq/stretches"]


def test_a_single_question_is_left_to_the_selector(reading_gate):
    m = read(reading_gate, "what should I wear to my massage", [("faq/what_to_wear", 0.9)])
    assert m.get("faq_answers") is None and m.get("faq_certainty") == "sure"


def test_a_story_without_a_question_close_to_any_answer_is_not_answered(reading_gate):
    m = read(reading_gate, "I moved here last year. My cat is called Max. Do you like jazz music?",
             [("faq/aftercare", 0.2), ("faq/what_to_wear", 0.15)])
    assert m.get("intent")["name"] in ("nlu_fallback", "out_of_scope") and m.get("faq_answers") is None


# --- near-topic questions: closer to an out_of_scope example than to any FAQ example ------------

NEAR_TOPIC_OFF = ["my shoulder clicks when I lift my arm, what is that", "is acupuncture worth trying for neck pain",
                  "which foam roller should I buy"]


@pytest.fixture(scope="module")
def near_topic_gate():
    from components.sentence_embeddings import encoder

    faq = encoder(MODEL).encode([text for text, _ in KNOWN])
    return FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5,
                              "off_topic_similarity": 0.2, "off_topic_margin": 0.0, "ambiguity_threshold": 0.0},
                             examples=faq, example_keys=[key for _, key in KNOWN],
                             off_topic_examples=encoder(MODEL).encode(NEAR_TOPIC_OFF))


def test_a_question_about_another_joint_is_off_topic_although_the_selector_is_sure(near_topic_gate):
    m = read(near_topic_gate, "my elbow clicks when I straighten my arm, why?", [("faq/symptoms", 0.95)])
    assert m.get("intent")["name"] == "out_of_scope"


def test_a_sciatica_question_stays_an_answer_beside_near_topic_examples(near_topic_gate):
    m = read(near_topic_gate, "what should I do after my massage?", [("faq/aftercare", 0.95)])
    assert m.get("intent")["name"] == "faq" and m.get("faq_certainty") == "sure"


def test_without_a_margin_the_out_of_scope_examples_are_not_consulted():
    from components.sentence_embeddings import encoder

    gate = FaqConfidenceGate({**FaqConfidenceGate.get_default_config(), "threshold": 0.5,
                              "off_topic_similarity": 0.2, "ambiguity_threshold": 0.0},
                             examples=encoder(MODEL).encode([text for text, _ in KNOWN]),
                             example_keys=[key for _, key in KNOWN],
                             off_topic_examples=encoder(MODEL).encode(NEAR_TOPIC_OFF))
    m = read(gate, "my elbow clicks when I straighten my arm, why?", [("faq/symptoms", 0.95)])
    assert m.get("intent")["name"] == "faq"


def test_an_unsure_answer_near_the_out_of_scope_examples_still_gets_not_sure(near_topic_gate):
    m = read(near_topic_gate, "my elbow clicks when I straighten my arm, why?", [("faq/symptoms", 0.1)])
    assert m.get("intent")["name"] == "nlu_fallback"
