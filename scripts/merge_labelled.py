"""`make merge-labelled FILE=...`: adds the messages staff labelled to the training data.

FILE is the spreadsheet `make export-unsure` wrote, saved as CSV after staff
filled its `label` column with the topic each message should have been (an
FAQ such as `faq/symptoms`, or `symptoms` for short, or another intent such as
`ask_price`; see docs/staff-guide.md). Rows with an empty label, `skip` or `-`
are left out.

Everything is checked before anything is written, and nothing is written if a
row has a problem: an unknown label, masked personal data ([name], [phone],
[email]) still in the message, a message already an example of another topic
or one of the test questions, or an emergency description labelled as an FAQ.
Each problem names the spreadsheet row. After writing, the data checks of
`make check` run; if they find a problem the files are put back as they were.

Usage: python scripts/merge_labelled.py FILE [--dry-run]
"""
from __future__ import annotations

import argparse
import csv
import difflib
import re
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.check_data import check, gather, normalise, read_nlu  # noqa: E402

SKIP = {"", "skip", "-", "none", "ignore"}
MASKS = re.compile(r"\[(name|phone|email)\]", re.IGNORECASE)


class MergeError(Exception):
    pass


@dataclass
class Labelled:
    row: int
    text: str
    intent: str


def read_rows(path: Path) -> List[Tuple[int, Dict[str, str]]]:
    try:
        raw = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise MergeError(f"There is no file {path}.") from None
    except UnicodeDecodeError:
        raise MergeError(f"{path} is not a text CSV file: save the spreadsheet as 'CSV UTF-8'.") from None
    try:
        dialect = csv.Sniffer().sniff(raw.splitlines()[0] if raw else "", delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(raw.splitlines(), dialect=dialect)
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    missing = {"message", "label"} - set(header)
    if missing:
        raise MergeError(f"{path.name} has no {' or '.join(sorted(missing))} column; it should have the columns "
                         "that `make export-unsure` wrote (message ... label).")
    reader.fieldnames = header
    # Spreadsheet rows: the header is row 1.
    return [(number, {k: (v or "").strip() for k, v in row.items() if k}) for number, row in enumerate(reader, 2)]


def resolve_label(label: str, intents: Dict[str, Path]) -> Optional[str]:
    label = label.strip().strip("'\"")
    for candidate in (label, f"faq/{label}", label.lower(), f"faq/{label.lower()}"):
        if candidate in intents:
            return candidate
    return None


def validate(rows, data_dir: Path, domain: Path, tests_dir: Path, spacy_model: Path):
    examples, _, _ = gather(data_dir, domain, [])
    intents: Dict[str, Path] = {}  # topic -> the file that holds its examples
    for example in examples:
        intents.setdefault(example.intent, example.file)
    existing = {normalise(e.text): e for e in examples}
    tests = {normalise(e.text): e.file.name for e in read_nlu(tests_dir, [])[0]}
    detector = None
    if (spacy_model / "meta.json").exists():
        from components.red_flags import detector_for

        detector = detector_for(str(spacy_model))

    problems: List[str] = []
    accepted: List[Labelled] = []
    already = 0
    seen: Dict[str, Labelled] = {}
    for number, row in rows:
        label, text = row.get("label", ""), " ".join(row.get("message", "").split())
        if label.lower() in SKIP:
            continue
        intent = resolve_label(label, intents)
        if intent is None:
            close = difflib.get_close_matches(label, list(intents), n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(close)}?" if close else " `make topics` lists them."
            problems.append(f"row {number}: '{label}' is not a topic the assistant knows.{hint}")
            continue
        if not text:
            problems.append(f"row {number}: the message is empty.")
            continue
        if MASKS.search(text):
            problems.append(f"row {number}: '{text}' still contains masked personal data; rewrite it without "
                            "[name]/[phone]/[email] or leave its label empty.")
            continue
        key = normalise(text)
        if key in tests:
            problems.append(f"row {number}: '{text}' is one of the test questions (tests/nlu/{tests[key]}); tests "
                            "must use wordings the assistant has not learned from, so leave its label empty.")
            continue
        other = existing.get(key)
        if other and other.intent != intent:
            problems.append(f"row {number}: '{text}' is already an example of '{other.intent}' "
                            f"({other.file.relative_to(ROOT) if other.file.is_relative_to(ROOT) else other.file}:"
                            f"{other.line}); one message can teach only one topic.")
            continue
        if other:
            already += 1
            continue
        if key in seen:
            if seen[key].intent != intent:
                problems.append(f"row {number}: the same message is labelled '{seen[key].intent}' in row "
                                f"{seen[key].row} and '{intent}' here; choose one.")
            continue
        if detector and intent.startswith("faq/"):
            detection = detector.detect(text)
            if detection.escalates and detection.tier in ("emergency", "urgent"):
                problems.append(f"row {number}: '{text}' describes {detection.tier} symptoms; the assistant "
                                "gives safety advice for it, never an FAQ answer. Label it report_red_flag or "
                                "leave it empty.")
                continue
        seen[key] = Labelled(number, text, intent)
        accepted.append(seen[key])
    return accepted, already, problems, intents


def insert_examples(text: str, intent: str, new: List[str]) -> str:
    """Adds example lines after the last example of `intent`, keeping the file's layout."""
    lines = text.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if re.match(rf"\s*- intent:\s*{re.escape(intent)}\s*$", line)),
                 None)
    if start is None:
        raise MergeError(f"could not find '- intent: {intent}'")
    examples_at = next(i for i in range(start + 1, len(lines)) if lines[i].strip().startswith("examples:"))
    last, indent = examples_at, None
    for i in range(examples_at + 1, len(lines)):
        stripped = lines[i].strip()
        if stripped.startswith("- ") and (indent is None or lines[i].startswith(indent + "- ")):
            indent = lines[i][: len(lines[i]) - len(lines[i].lstrip())]
            last = i
        elif stripped.startswith("#") or not stripped:
            continue
        else:
            break
    indent = indent if indent is not None else "    "
    if not lines[last].endswith("\n"):
        lines[last] += "\n"
    lines[last + 1:last + 1] = [f"{indent}- {example}\n" for example in new]
    return "".join(lines)


def merge(csv_path: Path, data_dir: Path = ROOT / "data", domain: Path = ROOT / "domain.yml",
          tests_dir: Path = ROOT / "tests" / "nlu", spacy_model: Path = ROOT / "build" / "spacy_en",
          dry_run: bool = False, rasa_validation: bool = True) -> int:
    try:
        rows = read_rows(csv_path)
        accepted, already, problems, intents = validate(rows, data_dir, domain, tests_dir, spacy_model)
    except MergeError as error:
        print(f"Nothing merged: {error}", file=sys.stderr)
        return 1
    if problems:
        print(f"Nothing merged: {len(problems)} row(s) need a fix first (the data is unchanged):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    note = f" ({already} already in the training data)" if already else ""
    if not accepted:
        print(f"Nothing to add: no labelled rows{note}.")
        return 0
    by_file: Dict[Path, Dict[str, List[str]]] = defaultdict(lambda: defaultdict(list))
    for item in accepted:
        by_file[intents[item.intent]][item.intent].append(item.text)
    originals = {path: path.read_text(encoding="utf-8") for path in by_file}
    updated = {}
    for path, additions in by_file.items():
        text = originals[path]
        for intent, new in additions.items():
            text = insert_examples(text, intent, new)
        updated[path] = text
    summary = [f"  {intent}: +{len(new)} ({path.relative_to(ROOT) if path.is_relative_to(ROOT) else path})"
               for path, additions in by_file.items() for intent, new in additions.items()]
    if dry_run:
        print(f"Would add {len(accepted)} example(s){note}:\n" + "\n".join(summary))
        return 0
    for path, text in updated.items():
        path.write_text(text, encoding="utf-8")
    findings = [f for f in check(data_dir, domain, spacy_model) if f.level == "problem"]
    if not findings and rasa_validation:
        result = subprocess.run([sys.executable, str(ROOT / "scripts" / "validate_data.py"), str(data_dir.parent)],
                                cwd=ROOT, capture_output=True, text=True)
        if result.returncode != 0:
            findings = [result.stdout[-2000:] + result.stderr[-2000:]]
    if findings:
        for path, text in originals.items():
            path.write_text(text, encoding="utf-8")
        print("Nothing merged: with these rows the data would not pass `make check`, so the files were put "
              "back as they were:", file=sys.stderr)
        for finding in findings:
            print(f"  {finding}", file=sys.stderr)
        return 1
    print(f"Added {len(accepted)} example(s){note}:\n" + "\n".join(summary))
    print("The data passes `make check`. Next: `make reload` to retrain and use them, then commit the change.")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path, nargs="?", help="the labelled CSV")
    parser.add_argument("--dry-run", action="store_true", help="say what would be added, change nothing")
    parser.add_argument("--topics", action="store_true", help="list the labels a row can have")
    args = parser.parse_args(argv)
    if args.topics:
        return list_topics()
    if args.file is None:
        parser.error("say which labelled CSV to merge")
    return merge(args.file, dry_run=args.dry_run)


def list_topics(data_dir: Path = ROOT / "data") -> int:
    """`make topics`: what a row's label can be, with each topic's first example."""
    examples, _, _ = gather(data_dir, ROOT / "domain.yml", [])
    first: Dict[str, str] = {}
    for example in examples:
        first.setdefault(example.intent, example.text)
    print("A row's label is one of these (FAQs can drop the 'faq/'), or empty to leave the row out:")
    for intent in sorted(first, key=lambda i: (not i.startswith("faq/"), i)):
        print(f"  {intent:40s} e.g. \"{first[intent]}\"")
    return 0


if __name__ == "__main__":
    sys.exit(main())
