"""Staff's tools: learning from real conversations (export, label, merge), the
quality report against its baseline, and reloading a retrained model."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from scripts import export_unsure, merge_labelled, quality_report
from scripts.check_data import check
from tests.running_assistant import rest_conversation

ROOT = Path(__file__).resolve().parent.parent


# --- export: the messages the assistant was unsure about, from the tracker store -----------------

def read_csv(path: Path):
    with path.open(encoding="utf-8-sig") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def visitor_conversation(assistant):
    """A WhatsApp visitor (the conversation id is their phone number) who asks something clear,
    says something the assistant can't understand, gives their name off-topic, then books."""
    sender = "whatsapp:+13055550188"
    said = {m: assistant.say(sender, m) for m in [
        "What causes sciatica?",
        "zxqv blorpt fnarg wibble",
        "my name is Casey Rivers, which pizza place near you is best",
        "I'd like to book a swedish massage", "an hour", "next tuesday afternoon",
        "Casey Rivers", "+1 305 555 0188", "No, none of these", "no", "None of these",
        "Yes, send my request",
        "thanks! you can also write to casey.rivers@example.com or call 305-555-0188",
    ]}
    return sender, said


def export(assistant, tmp_path, *extra):
    out = tmp_path / "unsure.csv"
    code = export_unsure.main(["--db", f"sqlite:///{assistant.db}", "--out", str(out), *extra])
    assert code == 0
    return out


def test_export_lists_what_the_assistant_did_not_understand_with_its_guesses(assistant, visitor_conversation,
                                                                              tmp_path):
    sender, _ = visitor_conversation
    rows = [r for r in read_csv(export(assistant, tmp_path))
            if r["conversation"] == export_unsure.conversation_code(rest_conversation(sender))]
    messages = [r["message"] for r in rows]
    assert "zxqv blorpt fnarg wibble" in messages
    gibberish = rows[messages.index("zxqv blorpt fnarg wibble")]
    # Gibberish far from every FAQ example is "treated as off-topic" when DIET calls it an FAQ (it did after
    # the near-topic examples of round 6), "not understood" when DIET is unsure: either way it is listed.
    assert gibberish["why"] in ("not understood", "treated as off-topic")
    assert gibberish["guess_1"] and gibberish["label"] == ""
    assert "What causes sciatica?" not in messages  # answered confidently: nothing to learn
    assert not [m for m in messages if m in ("an hour", "[name] [name]", "no", "Yes, send my request")], \
        "answers to the booking form's questions are left out by default"


def test_export_masks_phone_numbers_e_mails_and_names_everywhere(assistant, visitor_conversation, tmp_path):
    sender, _ = visitor_conversation
    # Everything the visitor said, form answers included (below 1.0 = every message).
    out = export(assistant, tmp_path, "--include-form-answers", "--below", "1.0")
    rows = [r for r in read_csv(out) if r["conversation"] == export_unsure.conversation_code(rest_conversation(sender))]
    assert len(rows) >= 8
    # Every column but the row number (which reaches 555 once other tests have filled the store).
    text = "\n".join(value for row in rows for column, value in row.items() if column != "row")
    for personal in ("Casey", "Rivers", "casey.rivers", "555", "0188", "13055550188", "whatsapp"):
        assert personal not in text
    messages = [r["message"] for r in rows]
    assert "[name] [name]" in messages and "[phone]" in messages
    assert any("[email]" in m and "[phone]" in m for m in messages)
    assert any(m.startswith("my name is [name]") for m in messages)


def test_export_of_a_period_without_conversations_is_empty_not_an_error(assistant, tmp_path, capsys):
    out = export(assistant, tmp_path, "--since", "2020-01-01", "--until", "2020-01-31")
    assert read_csv(out) == []
    assert "0 message(s)" in capsys.readouterr().out


def test_export_explains_bad_input(tmp_path, capsys):
    assert export_unsure.main(["--since", "2026-13-01"]) == 1
    assert "should be a date such as 2026-11-01" in capsys.readouterr().err
    assert export_unsure.main(["--since", "2026-11-10", "--until", "2026-11-01"]) == 1
    assert "is after --until" in capsys.readouterr().err
    assert export_unsure.main(["--db", f"sqlite:///{tmp_path}/none.db"]) == 1
    assert "no conversation database" in capsys.readouterr().err
    assert export_unsure.main(["--db", "postgresql://nobody@127.0.0.1:1/none"]) == 1
    assert "Could not read the conversations" in capsys.readouterr().err


def test_the_default_store_is_the_one_in_endpoints_yml(tmp_path, monkeypatch):
    assert export_unsure.tracker_store_url() == f"sqlite:///{ROOT / 'var' / 'tracker.db'}"
    endpoints = tmp_path / "endpoints.yml"
    endpoints.write_text("tracker_store:\n  type: SQL\n  dialect: postgresql\n  url: db.internal\n  port: 5432\n"
                         "  db: rasa\n  username: rasa\n  password: ${DB_PASSWORD}\n")
    monkeypatch.setenv("DB_PASSWORD", "from-the-environment")
    assert export_unsure.tracker_store_url(endpoints) == \
        "postgresql://rasa:from-the-environment@db.internal:5432/rasa"


# --- merge: labelled rows into the training data ------------------------------------------------

def labelled(project, rows, delimiter=","):
    path = project / "labelled.csv"
    with path.open("w", newline="", encoding="utf-8-sig") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(export_unsure.COLUMNS)
        for number, (message, label) in enumerate(rows, 1):
            writer.writerow([number, "2026-11-20 10:00", "c-1", message, "not understood", "nlu_fallback", "0.50",
                             "", "", "", label])
    return path


def merge(project, path, **options):
    return merge_labelled.merge(path, project / "data", project / "domain.yml", project / "tests" / "nlu",
                                ROOT / "build" / "spacy_en", **options)


def examples_of(project, intent):
    for path in (project / "data").rglob("*.yml"):
        for block in (yaml.safe_load(path.read_text()) or {}).get("nlu") or []:
            if block.get("intent") == intent:
                return [line.strip()[2:] for line in block["examples"].splitlines() if line.strip()]
    raise KeyError(intent)


def snapshot(project):
    return {p: p.read_text() for p in (project / "data").rglob("*.yml")}


def test_merge_adds_labelled_rows_under_their_topic_and_the_data_still_passes_validation(project, capsys):
    path = labelled(project, [
        ("does rubbing my lower back actually get rid of sciatica for good", "faq/massage_not_a_cure"),
        ("is sitting on my wallet bad for the nerve", "cause_sitting_and_posture"),   # short label
        ("whats the damage for a 90 minute session", "ask_price"),
        ("zxqv blorpt", ""),          # not labelled: left out
        ("asdf", "skip"),
    ])
    assert merge(project, path) == 0, capsys.readouterr()
    assert "does rubbing my lower back actually get rid of sciatica for good" in \
        examples_of(project, "faq/massage_not_a_cure")
    assert "is sitting on my wallet bad for the nerve" in examples_of(project, "faq/cause_sitting_and_posture")
    assert "whats the damage for a 90 minute session" in examples_of(project, "ask_price")
    assert "Added 3 example(s)" in capsys.readouterr().out
    # What `make check` runs: the content checks (with test coverage) and Rasa's validation.
    problems = [f for f in check(project / "data", project / "domain.yml", ROOT / "build" / "spacy_en",
                                 tests_dir=project / "tests") if f.level == "problem"]
    assert problems == []
    # Merging the same file again adds nothing.
    before = snapshot(project)
    assert merge(project, path, rasa_validation=False) == 0
    assert snapshot(project) == before and "already in the training data" in capsys.readouterr().out


@pytest.mark.parametrize("message, label, says", [
    ("how long does sciatica last", "faq/sympton", "Did you mean faq/symptoms"),
    ("call me back on [phone]", "request_human", "still contains masked personal data"),
    ("What causes sciatica?", "faq/symptoms", "already an example of 'faq/what_causes_sciatica'"),
    ("sciatica origins", "faq/what_causes_sciatica", "one of the test questions"),
    ("I suddenly can't control my bladder and my groin is numb", "faq/symptoms", "describes emergency symptoms"),
    ("", "greet", "the message is empty"),
])
def test_merge_refuses_a_bad_row_names_it_and_changes_nothing(project, capsys, message, label, says):
    path = labelled(project, [("what exercises help with a sore hip and sciatica", "faq/exercises"),
                              (message, label)])
    before = snapshot(project)
    assert merge(project, path, rasa_validation=False) == 1
    err = capsys.readouterr().err
    assert "Nothing merged" in err and "row 3" in err and says in err
    assert snapshot(project) == before


def test_merge_refuses_one_message_with_two_labels(project, capsys):
    path = labelled(project, [("can u tell me the price", "ask_price"), ("can u tell me the price", "ask_hours")])
    assert merge(project, path, rasa_validation=False) == 1
    assert "labelled 'ask_price' in row 2 and 'ask_hours' here" in capsys.readouterr().err


def test_merge_reads_a_spreadsheet_saved_with_semicolons(project, capsys):
    path = labelled(project, [("hey hey, anybody around?", "greet")], delimiter=";")
    assert merge(project, path, rasa_validation=False) == 0, capsys.readouterr()
    assert "hey hey, anybody around?" in examples_of(project, "greet")


def test_merge_of_a_file_that_is_not_an_export_says_so(project, capsys):
    path = project / "notes.csv"
    path.write_text("question,answer\nfoo,bar\n")
    assert merge(project, path, rasa_validation=False) == 1
    assert "has no label or message column" in capsys.readouterr().err
    assert merge(project, project / "missing.csv", rasa_validation=False) == 1
    assert "There is no file" in capsys.readouterr().err


def test_merge_puts_the_files_back_when_the_result_would_fail_the_checks(project, capsys, monkeypatch):
    path = labelled(project, [("is a foam roller good for sciatica", "faq/exercises")])
    before = snapshot(project)
    from scripts.check_data import Finding

    monkeypatch.setattr(merge_labelled, "check", lambda *a: [Finding("problem", path, 1, "broken on purpose")])
    assert merge(project, path, rasa_validation=False) == 1
    assert "put back as they were" in capsys.readouterr().err and snapshot(project) == before


# --- the quality report ------------------------------------------------------------------------

def rasa_results(folder: Path, intent_f1=0.9, answer_f1=0.8, greet=1.0):
    folder.mkdir(parents=True, exist_ok=True)
    row = lambda f1: {"precision": f1, "recall": f1, "f1-score": f1, "support": 5, "confused_with": {}}  # noqa: E731
    (folder / "intent_report.json").write_text(json.dumps({
        "greet": row(greet), "ask_price": row(0.8), "faq": row(0.95), "accuracy": intent_f1,
        "weighted avg": row(intent_f1) | {"support": 15}, "macro avg": row(intent_f1)}))
    (folder / "response_selection_report.json").write_text(json.dumps({
        "faq/symptoms": row(answer_f1), "faq/what_causes_sciatica": row(0.6), "weighted avg": row(answer_f1)}))
    (folder / "intent_errors.json").write_text(json.dumps([
        {"text": "how much for an hour", "intent": "ask_price", "intent_prediction": {"name": "ask_hours",
                                                                                       "confidence": 0.6}}]))
    (folder / "response_selection_errors.json").write_text(json.dumps([
        {"text": "what brings sciatica on", "intent_response_key_target": "faq/what_causes_sciatica",
         "intent_response_key_prediction": {"name": "faq/symptoms", "confidence": 0.4}}] * 2))
    return folder


def test_report_lists_scores_confused_pairs_and_draws_the_matrix(tmp_path, capsys):
    results, out = rasa_results(tmp_path / "nlu"), tmp_path / "quality"
    assert quality_report.main([str(results), "--baseline", str(tmp_path / "none.json"), "--out", str(out)]) == 0
    report = (out / "report.md").read_text()
    assert "**0.900**" in report and "**0.800**" in report
    assert "| faq/what_causes_sciatica | faq/symptoms | 2 | \"what brings sciatica on\"" in report
    assert report.index("faq/what_causes_sciatica | 0.60") < report.index("greet | 1.00")  # weakest first
    assert (out / "confusion.png").read_bytes()[:4] == b"\x89PNG"
    assert "No baseline yet" in capsys.readouterr().out


def test_a_change_that_makes_things_worse_than_the_baseline_is_flagged(tmp_path, capsys):
    baseline = tmp_path / "baseline.json"
    assert quality_report.main([str(rasa_results(tmp_path / "before")), "--baseline", str(baseline),
                                "--save-baseline"]) == 0
    saved = json.loads(baseline.read_text())
    assert saved["intent_f1"] == 0.9 and saved["topics"]["greet"]["f1"] == 1.0
    worse = rasa_results(tmp_path / "after", intent_f1=0.8, greet=0.5)
    args = [str(worse), "--baseline", str(baseline), "--out", str(tmp_path / "q")]
    assert quality_report.main(args) == 0  # shown
    assert quality_report.main(args + ["--fail-if-worse"]) == 1  # and fails `make test`
    said = capsys.readouterr()
    assert "0.800, baseline 0.900 (-0.100): WORSE" in said.out and "greet: 0.50 (was 1.00)" in said.out
    assert "worse than the baseline" in said.err
    noise = rasa_results(tmp_path / "noise", intent_f1=0.89)
    assert quality_report.main([str(noise), "--baseline", str(baseline), "--out", str(tmp_path / "q"),
                                "--fail-if-worse"]) == 0


def test_the_committed_baseline_covers_every_topic():
    baseline = json.loads(quality_report.BASELINE.read_text())
    faqs = {f"faq/{p.stem}" for p in (ROOT / "data" / "faq").glob("*.yml")}
    assert faqs <= set(baseline["topics"]) and 0.85 <= baseline["intent_f1"] <= 1


# --- reload: the running assistant takes the new model without a restart ------------------------

def test_reload_loads_the_model_into_the_running_assistant(assistant, capsys):
    from scripts.reload_model import reload
    from tests.running_assistant import API_TOKEN, MODEL, text_of

    url = f"http://localhost:{assistant.port}"
    assert reload(url, MODEL, token="wrong-token") == 1
    assert "refused the API token" in capsys.readouterr().err
    assert reload(url, MODEL, token=API_TOKEN) == 0
    assert "Reloaded" in capsys.readouterr().out
    answer = yaml.safe_load((ROOT / "data" / "faq" / "what_is_sciatica.yml").read_text())["responses"]
    opening = answer["utter_faq/what_is_sciatica"][0]["text"][:40]  # whatever staff last wrote there
    assert opening in text_of(assistant.say("after-reload", "What is sciatica?"))


def test_reload_with_nothing_running_says_make_run_will_use_the_new_model(capsys):
    from scripts.reload_model import reload
    from tests.running_assistant import MODEL, free_port

    assert reload(f"http://localhost:{free_port()}", MODEL, token="x") == 0
    assert "not running" in capsys.readouterr().out
