"""The booking form's parsers against the cases in tests/booking/parser_cases.yml."""
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import yaml

from actions.booking_parsers import parse_contact, parse_name, parse_preferred_time, parse_technique, parse_yes_no

CASES = yaml.safe_load((Path(__file__).parent / "booking" / "parser_cases.yml").read_text(encoding="utf-8"))
NOW = datetime(2026, 11, 20, 14, 0, tzinfo=ZoneInfo("America/New_York"))


@pytest.mark.parametrize("case", CASES["time"], ids=lambda c: c["text"])
def test_preferred_time(case):
    found = parse_preferred_time(case["text"], NOW)
    if case.get("none"):
        assert found is None
        return
    assert found is not None
    got = {"date": found.date.isoformat() if found.date else None,
           "time": found.time.strftime("%H:%M") if found.time else None,
           "part_of_day": found.part_of_day, "flexible": found.flexible, "past": found.past}
    assert got == {key: case[key] for key in got}


@pytest.mark.parametrize("case", CASES["contact"], ids=lambda c: c["text"])
def test_contact(case):
    found = parse_contact(case["text"])
    if case.get("none"):
        assert found is None
    else:
        assert found == {k: case[k] for k in ("phone", "email") if case.get(k)}


@pytest.mark.parametrize("case", CASES["name"], ids=lambda c: c["text"])
def test_name(case):
    assert parse_name(case["text"]) == (None if case.get("none") else case["name"])


@pytest.mark.parametrize("text, technique", [
    ("deep tissue please", "deep tissue"), ("Swedish", "swedish"), ("the hot stone one", "hot stone"),
    ("trigger point therapy", "trigger point"), ("myofascial release", "myofascial release"),
    ("some assisted stretching", "stretching"), ("not sure, the therapist can advise", "not sure"),
    ("no idea, you choose", "not sure"), ("a foot rub", None), ("hello", None),
])
def test_technique(text, technique):
    assert parse_technique(text) == technique


@pytest.mark.parametrize("text, answer", [
    ("No, none of these", False), ("nope", False), ("no", False), ("I don't", False), ("none", False),
    ("yes", True), ("Yes, send my request", True), ("yeah i do", True), ("y", True), ("sure", True),
    ("maybe", None), ("what do you mean?", None),
])
def test_yes_no(text, answer):
    assert parse_yes_no(text) is answer
