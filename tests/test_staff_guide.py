"""The staff guide's worked example (docs/staff-guide.md) works on today's data:
its files pass `make check`, and the check's messages are the ones the guide shows."""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from scripts.check_data import check

ROOT = Path(__file__).resolve().parent.parent
GUIDE = (ROOT / "docs" / "staff-guide.md").read_text()
# "Create `path` ...:" or "and `path`:" followed by a ```yaml block.
FILES = dict(re.findall(r"`([\w/.-]+\.yml)`[^`]*?:\n\n```yaml\n(.*?)```", GUIDE, re.DOTALL))


def run_check(project):
    return [f for f in check(project / "data", project / "domain.yml", ROOT / "build" / "spacy_en",
                             tests_dir=project / "tests")]


def test_the_guide_has_the_three_files_of_the_worked_example():
    assert set(FILES) == {"data/faq/prenatal_massage.yml", "tests/nlu/holdout_staff.yml",
                          "tests/conversations/test_staff.yml"}
    faq = yaml.safe_load(FILES["data/faq/prenatal_massage.yml"])
    assert faq["nlu"][0]["examples"].splitlines()[0] == "- Do you offer prenatal massage?"


def test_step_2_prints_the_two_problems_the_guide_shows(project):
    (project / "data/faq/prenatal_massage.yml").write_text(FILES["data/faq/prenatal_massage.yml"])
    problems = [str(f).replace(str(project) + "/", "") for f in run_check(project) if f.level == "problem"]
    shown = re.findall(r"^PROBLEM .*$", GUIDE, re.MULTILINE)
    assert sorted(problems) == sorted(shown)


def test_after_step_3_the_check_passes(project):
    for path, text in FILES.items():
        (project / path).write_text(text)
    assert [str(f) for f in run_check(project) if f.level == "problem"] == []


def test_the_example_answer_claims_nothing_the_clinic_has_not_confirmed():
    answer = yaml.safe_load(FILES["data/faq/prenatal_massage.yml"])["responses"]["utter_faq/prenatal_massage"][0]
    assert "staff will confirm" in answer["text"] and len(answer["text"]) <= 320
    assert not re.search(r"\$|\d+ ?(minutes|min)\b|we offer|yes,", answer["text"], re.IGNORECASE)


def test_the_example_causes_no_warning_and_the_guide_quotes_todays_count_of_older_ones(project):
    for path, text in FILES.items():
        (project / path).write_text(text)
    warnings = [str(f) for f in run_check(project) if f.level != "problem"]
    assert not [w for w in warnings if "prenatal_massage" in w]
    quoted = set(re.findall(r"(\d+) older warning\(s\)", GUIDE))
    assert quoted == {str(len(warnings))}
