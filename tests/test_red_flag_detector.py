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
    "can i just stay in bed til my sciatica chills out",     # calming down, not a fever's chills
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


def test_flare_ups_that_come_with_the_seasons_are_not_massage_failing(detector):
    assert tier(detector, "My sciatica comes back every winter. Would regular massages help head that off?") is None
    assert tier(detector, "three massages and the pain still comes back the next day") == "see_doctor"


def test_the_most_serious_tier_wins(detector):
    assert tier(detector, "sciatica for 2 months and now i cant control my bladder") == "emergency"


# --- indirect wordings of the real signs, and the root causes of false alarms around them ------------

@pytest.mark.parametrize("text", [
    "I couldn't feel the towel on my groin after my shower, back pain since friday",  # what the area should feel
    "can't feel the toilet seat under my bum, sciatica is awful",
    "the bath water doesn't feel warm on my backside anymore, disc trouble since monday",
    "since my back went my privates feel like cardboard",                              # numbness as a comparison
    "wiping feels like nothing at all since my back went",
])
def test_saddle_numbness_said_indirectly_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "since my back went my knickers are always damp and I don't feel it happening",  # what a leak leaves
    "my sheets were wet this morning and I didn't know I'd gone, back is bad",
    "stuff slips out without me noticing since I hurt my back",                      # a leak not noticed
    "I can't clench down there anymore and my back is killing me",                   # the sphincter
    "twice I didn't make it to the bathroom for a number 2, back pain since tuesday", # a negation that is the symptom
    "went a whole day without needing the toilet, lower back pain for 4 days",       # retention as no urge
    "I have to press on my tummy to get the wee out, back has been bad",
])
def test_bladder_and_bowel_loss_said_indirectly_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "my sheets are soaked with sweat every night and my back aches",    # wet for a plain reason
    "I spilled coffee on my jeans, they're wet, and my back is sore",
    "my water bottle leaked in my bag without me noticing, back pain too",
    "My grandma has had incontinence for years, I'm booking for me",    # long-standing, not new
    "I've had a catheter for years for a condition unrelated to my back",
    "Had a bowel accident once with food poisoning, my back is just stiff",  # a stomach bug explains it
    "the residents at my care home are incontinent and my back is sore from lifting them",  # a caseload
])
def test_wet_or_leaking_for_a_plain_reason_does_not_escalate(detector, text):
    assert tier(detector, text) != "emergency"


@pytest.mark.parametrize("text", [
    "neither leg would support me this morning, back spasms",      # "would" between cue and function
    "both my legs keep folding under me since my back went",       # legs that fail, no symptom word
    "my legs won't hold me up, either of them, back is bad",
    "my sciatica was only in the left leg but now the right one is doing it too",
])
def test_both_legs_failing_said_indirectly_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "I hurt my back and now my junk doesn't work at all",
    "since my back went out there's no feeling when we're intimate",
    "no morning wood since my back went on friday",
])
def test_sexual_function_said_indirectly_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "came off a ladder from a height onto concrete, back agony",
    "I was hit from behind at high speed, airbags went off, back hurts now",
    "skiing, hit a tree and heard a crack in my back, still sore",
    "got slammed down on the boat seat when we hit a wave, back pain since",
])
def test_high_energy_injuries_said_without_fall_or_crash_escalate(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "I climbed a flight of stairs and my back hurts",
    "nothing came of the physio referral, back still sore",
    "work has been slammed this week and my back is killing me",
])
def test_everyday_words_near_injury_words_do_not_escalate(detector, text):
    assert tier(detector, text) is None


@pytest.mark.parametrize("text", [
    "half my face went numb an hour ago and my back hurts",       # one side of the face
    "the side of my face is numb and tingly, started this morning",
    "can sciatica make half your face go numb? it happened while I was watching TV",  # asked, but it happened
    "my chest feels like an elephant is sitting on it and my back hurts",  # chest pain as a weight
    "my back is killing me and my chest feels like someone's standing on it",  # "someone" in a comparison
    "my calf is swollen and I'm winded climbing one flight of stairs",     # breathlessness in other words
    "swollen calf and I coughed up blood today",
])
def test_stroke_chest_and_lung_clot_said_indirectly_escalate(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text", [
    "half my face is numb from the dentist injection",            # the dentist explains it
    "My shoulder is frozen, can't lift my arm above my head",     # an arm not lifted, not sudden
    "my calf is swollen from a bee sting and I have a cold with coughing",
    "that spin class kicked my butt, I literally can't feel my legs haha",  # a figure of speech after sport
])
def test_everyday_causes_of_face_arm_calf_and_leg_words_do_not_escalate(detector, text):
    assert tier(detector, text) != "emergency"


@pytest.mark.parametrize("text", [
    "My sciatica went into both legs once, years ago, the doctor sorted it and it hasn't happened since",
    "I had a chest pain scare in March, cardiologist did all the tests, heart is perfect",  # a scare is over
    "had a bladder scare a while back, all tests were fine",
])
def test_episodes_that_were_sorted_or_a_scare_do_not_escalate(detector, text):
    assert tier(detector, text) is None


# Round 6 of issue 18: false emergencies found on the red-flag corpora (kinds a blind set's judge named:
# resolved past episodes, a chest that is sore from muscles or jewellery, definitions, shows and games).
@pytest.mark.parametrize("text", [
    "my mum's sciatica spread to both her legs once, she had an operation in 2020 and is great now",
    "wet the bed once after my brother's wedding party, never again, just being honest",
    "my son fell off his bike last month, x-rays clear, he only has a stiff shoulder now, can he book?",
    "grandpa's had bladder leaks since his prostate op, his urologist manages it, can he lie face down?",
    "can you work on my pecs? they're so tight from bench press",
    "my chest is a bit sore from the new piercing, can I lie face down?",
    "my buddy asked me what cauda equina means and I had no clue",
    "in the film last night a guy lost all feeling in both legs after a crash, is that realistic?",
    "fell off a cliff in Minecraft like ten times, now my neck is stiff from gaming lol",
    "my face dropped when I saw the price of the long session haha",
    "negative for saddle numbness, negative for bladder problems, just sciatica",
])
def test_over_explained_or_asked_about_signs_do_not_escalate(detector, text):
    assert tier(detector, text) != "emergency"


@pytest.mark.parametrize("text", [
    "I had an operation on my back years ago and was fine, but since Monday I can't feel my bum",
    "my chest feels tight from bench press and I'm short of breath, back is killing me",
    "my groin went numb after the gym, what does that mean?",
    "hurt my back, x-rays clear, but now my legs are both numb",
    "tingling where the bike saddle sits and it hasn't stopped",  # saddle paraesthesia
    "both my feet have started slapping the floor when I walk",  # foot drop on both sides
])
def test_a_current_sign_next_to_an_everyday_or_resolved_one_still_escalates(detector, text):
    assert tier(detector, text) == "emergency"


@pytest.mark.parametrize("text, expected", [
    ("chest pain scared me last night, it's still there and my back hurts", "emergency"),  # afraid, not "a scare"
    ("my lady bits have gone dead since I hurt my back, is that a normal sciatica thing?", "emergency"),  # asked
    ("I'm a myeloma survivor and there's a new ache in my lower spine. Ok to book?", "urgent"),  # not resolved
    ("I had breast cancer 5 years ago, all clear, but my back started hurting recently", "urgent"),  # history
])
def test_a_question_or_an_old_history_does_not_clear_a_report(detector, text, expected):
    assert tier(detector, text) == expected


@pytest.mark.parametrize("text, expected", [
    ("calf is tight and red and feels warm, hurts when I flex my foot", "urgent"),   # DVT without "swollen"
    ("dropped two dress sizes without trying, and my back aches", "urgent"),
    ("my back pain gets worse the longer i rest at night", "urgent"),
    ("I keep stumbling over nothing, my toe catches", "urgent"),
    ("I've been on prednisone for years and now my back really hurts", "urgent"),
    ("week 7 of this sciatica, what do you recommend", "see_doctor"),
    ("6 sessions in and my sciatica hasn't budged", "see_doctor"),
])
def test_urgent_and_see_doctor_signs_said_indirectly(detector, text, expected):
    assert tier(detector, text) == expected


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
