"""The questions inside a longer message, as the FAQ gate reads them one by one."""
import pytest

from components.question_parts import parts, questions


def test_a_single_question_is_read_whole():
    assert questions("what should I wear to my massage?") == []
    assert questions("Swedish or deep tissue for sciatica") == []


@pytest.mark.parametrize("text, expected", [
    ("What should I wear, and can I eat before?", ["What should I wear", "can I eat before?"]),
    ("what causes sciatica also does hot stone help", ["what causes sciatica", "does hot stone help"]),
    ("1. what to wear? 2. how long is a session?", ["what to wear?", "how long is a session?"]),
    ("Hi! I'm booked Thursday. Should I drink water after?", ["Should I drink water after?"]),
])
def test_each_question_of_a_message_is_found(text, expected):
    assert questions(text) == expected


def test_the_story_around_a_question_is_left_out():
    story = ("I'm a nurse on twelve hour shifts. Last week a sharp pain started in my bum and went down my "
             "thigh. My partner says to look after myself. Which stretches would help me at home?")
    assert questions(story) == ["Which stretches would help me at home?"]


def test_an_and_that_joins_no_question_does_not_split():
    assert parts("my back and my leg ache and I sit all day") == ["my back and my leg ache and I sit all day"]
