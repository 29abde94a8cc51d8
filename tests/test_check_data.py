"""`make check` (scripts/check_data.py): each check, fed a broken data set, says what is wrong in plain words."""

import pytest

from scripts.check_data import ROOT, check

TEN = [f"how do stretches help sciatica number {n}" for n in range(10)]


def examples(lines):
    return "\n".join(f"    - {line}" for line in lines)


def faq(name, questions, answer="A short answer in our own words."):
    text = f'version: "3.1"\nnlu:\n- intent: faq/{name}\n  examples: |\n{examples(questions)}\n'
    if answer is not None:
        text += f"\nresponses:\n  utter_faq/{name}:\n  - text: >-\n      {answer}\n"
    return text


@pytest.fixture
def data(tmp_path):
    (tmp_path / "data" / "faq").mkdir(parents=True)
    (tmp_path / "domain.yml").write_text('version: "3.1"\nresponses:\n  utter_hello:\n  - text: "Hi!"\n')

    def run(**files):
        for name, text in files.items():
            (tmp_path / "data" / "faq" / f"{name}.yml").write_text(text)
        findings = check(tmp_path / "data", tmp_path / "domain.yml", ROOT / "build" / "spacy_en")
        return [str(f) for f in findings]

    return run


def one(findings, level="PROBLEM"):
    found = [f for f in findings if f.startswith(level)]
    assert len(found) == 1, findings
    return found[0]


def test_a_clean_faq_passes(data):
    assert data(stretches=faq("stretches", TEN)) == []


def test_a_broken_indent_is_named_with_its_line(data):
    broken = faq("stretches", TEN).replace("    - how do stretches help sciatica number 3",
                                           "  - how do stretches help sciatica number 3")
    message = one(data(stretches=broken))
    assert "stretches.yml:" in message and "not valid YAML" in message and "indent" in message


def test_a_question_without_an_answer(data):
    assert "has no answer: add 'utter_faq/stretches:'" in one(data(stretches=faq("stretches", TEN, answer=None)))


def test_an_answer_without_questions(tmp_path, data):
    answer_only = 'version: "3.1"\nresponses:\n  utter_faq/orphan:\n  - text: "An answer."\n'
    assert "'utter_faq/orphan' has no example questions" in one(data(orphan=answer_only))


def test_too_few_examples_says_how_many_are_needed(data):
    message = one(data(stretches=faq("stretches", TEN[:3])))
    assert "has 3 example(s); it needs at least 10" in message


def test_the_same_example_under_two_topics(data):
    message = one(data(stretches=faq("stretches", TEN), walking=faq("walking", TEN[:1] + [
        f"is walking good for sciatica, question {n}" for n in range(10)])))
    assert "is also an example of 'faq/stretches'" in message and "walking.yml:" in message


def test_an_answer_too_long_for_a_chat_bubble(data):
    message = one(data(stretches=faq("stretches", TEN, answer="word " * 120)))
    assert "is 599 characters; keep it to 500 or less" in message or "characters; keep it to 500" in message


def test_a_red_flag_symptom_as_an_faq_example(data):
    questions = TEN + ["my groin has gone numb and i cant pee"]
    message = one(data(stretches=faq("stretches", questions)))
    assert "describes emergency symptoms" in message and "treats such a message as a red flag" in message


def test_examples_so_alike_the_model_will_mix_them_up_are_a_warning(data):
    walking = [f"is walking good for sciatica, question {n}" for n in range(9)] + ["how do stretches help sciatica numbers 4"]
    message = one(data(stretches=faq("stretches", TEN), walking=faq("walking", walking)), level="WARNING")
    assert "reads almost like" in message and "may mix these topics up" in message


def test_the_shipped_data_passes():
    problems = [f for f in check() if f.level == "problem"]
    assert problems == []


def test_a_new_faq_without_test_questions_or_a_test_conversation(tmp_path, data):
    data(stretches=faq("stretches", TEN))
    tests = tmp_path / "tests"
    (tests / "nlu").mkdir(parents=True)
    (tests / "conversations").mkdir()
    findings = [str(f) for f in check(tmp_path / "data", tmp_path / "domain.yml", ROOT / "build" / "spacy_en",
                                      tests_dir=tests)]
    assert any("'faq/stretches' has 0 test question(s) in tests/nlu/; add at least 3" in f for f in findings)
    assert any("'faq/stretches' has no test conversation" in f for f in findings)
    (tests / "nlu" / "holdout.yml").write_text(
        'version: "3.1"\nnlu:\n- intent: faq/stretches\n  examples: |\n    - a\n    - b\n    - c\n')
    (tests / "conversations" / "test_new.yml").write_text(
        'version: "3.1"\nstories:\n- story: s\n  steps:\n  - user: |\n      hi\n    intent: faq/stretches\n'
        '  - action: action_answer_faq\n')
    assert check(tmp_path / "data", tmp_path / "domain.yml", ROOT / "build" / "spacy_en", tests_dir=tests) == []


def test_the_shipped_data_and_tests_pass():
    problems = [f for f in check(tests_dir=ROOT / "tests") if f.level == "problem"]
    assert problems == []


def test_warnings_are_shown_for_the_files_being_edited_not_for_untouched_ones():
    from scripts.check_data import Finding, about_changed_files

    untouched = Finding("warning", ROOT / "data/nlu/clinic.yml", 87, "'location' (ask_location) reads almost like "
                        "'sciatic nerve location' (faq/sciatic_nerve, sciatic_nerve.yml:9)")
    about_new = Finding("warning", ROOT / "data/faq/sciatica_in_pregnancy.yml", 7, "'Why do pregnant women get "
                        "sciatica?' reads almost like 'massage for pregnant women?' (faq/prenatal_massage, "
                        "prenatal_massage.yml:12)")
    changed = ["data/faq/prenatal_massage.yml"]
    assert not about_changed_files(untouched, changed)
    assert about_changed_files(about_new, changed)
    assert about_changed_files(untouched, None)  # git can't tell: show everything
