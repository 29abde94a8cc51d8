"""`make check`: checks the assistant's data after an edit, in plain words.

For clinic staff editing data/faq/, data/nlu/ and domain.yml. Each problem is
printed with its file and line and what to do about it. Problems (the command
fails) and warnings (it passes, but look):

  problem  a file that is not valid YAML (usually an indent)
  problem  an FAQ question without an answer, or an answer without questions
  problem  too few example questions for a topic
  problem  the same example under two topics
  problem  an answer too long for a chat bubble (or an SMS variant too long)
  problem  an FAQ example that describes an emergency or urgent symptom: the
           assistant would treat it as a red flag, never as the question
  problem  a topic without test questions in tests/nlu/, or an FAQ without a
           test conversation in tests/conversations/
  warning  examples of two topics so alike that the model will mix them up

Then it runs Rasa's own data validation (scripts/validate_data.py).
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import yaml

ROOT = Path(__file__).resolve().parent.parent
MIN_FAQ_EXAMPLES = 10
MIN_OTHER_EXAMPLES = 10
MIN_TEST_QUESTIONS = 3
MAX_ANSWER_CHARS = 500
MAX_SMS_CHARS = 300
SIMILAR = 0.8  # cosine similarity of character 3-5-grams above which two examples look the same to the model


@dataclass
class Finding:
    level: str  # "problem" or "warning"
    file: Path
    line: int
    message: str

    def __str__(self) -> str:
        try:
            where = self.file.relative_to(ROOT)
        except ValueError:
            where = self.file
        return f"{self.level.upper():8s} {where}:{self.line}: {self.message}"


@dataclass
class Example:
    text: str
    intent: str
    file: Path
    line: int


def normalise(text: str) -> str:
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # [entity](annotation) -> entity
    return re.sub(r"[^\w']+", " ", text.lower()).strip()


def line_of(lines: List[str], needle: str, start: int = 0) -> int:
    for number, line in enumerate(lines[start:], start + 1):
        if needle in line:
            return number
    return 1


def read_yaml(path: Path, findings: List[Finding]) -> Optional[dict]:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
        line = mark.line + 1 if mark else 1
        what = getattr(error, "problem", None) or "it can't be read"
        findings.append(Finding("problem", path, line, f"this file is not valid YAML ({what}). Usually an indent: "
                                "every '- ' example line needs the same spaces in front as its neighbours, and "
                                "text continues with the same indent as the line above."))
        return None


def read_nlu(directory: Path, findings: List[Finding]):
    """Every example (with its file and line) and response in the YAML files under `directory`."""
    examples: List[Example] = []
    responses: Dict[str, Tuple[list, Path, int]] = {}
    for path in sorted(directory.rglob("*.yml")):
        content = read_yaml(path, findings)
        if content is None:
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for block in content.get("nlu") or []:
            intent = block.get("intent")
            if not intent:
                continue
            start = line_of(lines, f"intent: {intent}") - 1
            for raw in (block.get("examples") or "").splitlines():
                text = raw.strip()[2:].strip() if raw.strip().startswith("- ") else ""
                if text:
                    examples.append(Example(text, intent, path, line_of(lines, text, start)))
        for name, variants in (content.get("responses") or {}).items():
            responses[name] = (variants or [], path, line_of(lines, f"{name}:"))
    return examples, responses


def gather(data_dir: Path, domain_file: Path, findings: List[Finding]):
    examples, responses = read_nlu(data_dir, findings)
    domain = read_yaml(domain_file, findings) or {}
    domain_lines = domain_file.read_text(encoding="utf-8").splitlines() if domain_file.exists() else []
    for name, variants in (domain.get("responses") or {}).items():
        responses.setdefault(name, (variants or [], domain_file, line_of(domain_lines, f"{name}:")))
    return examples, responses, domain


def check_faqs(examples: List[Example], responses, findings: List[Finding]) -> None:
    by_intent: Dict[str, List[Example]] = defaultdict(list)
    for example in examples:
        by_intent[example.intent].append(example)
    for intent, found in sorted(by_intent.items()):
        first = found[0]
        if intent.startswith("faq/"):
            if f"utter_{intent}" not in responses:
                findings.append(Finding("problem", first.file, first.line - 1 if first.line > 1 else 1,
                                        f"the question '{intent}' has no answer: add 'utter_{intent}:' under "
                                        "'responses:' in this file"))
            needed = MIN_FAQ_EXAMPLES
        else:
            needed = MIN_OTHER_EXAMPLES
        if len(found) < needed:
            findings.append(Finding("problem", first.file, first.line,
                                    f"'{intent}' has {len(found)} example(s); it needs at least {needed} different "
                                    "ways a visitor might ask, so the assistant recognises new wordings"))
    for name, (_, path, line) in sorted(responses.items()):
        if name.startswith("utter_faq/") and name[len("utter_"):] not in by_intent:
            findings.append(Finding("problem", path, line, f"the answer '{name}' has no example questions: add "
                                    f"'- intent: {name[len('utter_'):]}' with examples under 'nlu:'"))


def check_duplicates(examples: List[Example], findings: List[Finding]) -> None:
    seen: Dict[str, Example] = {}
    for example in examples:
        key = normalise(example.text)
        other = seen.get(key)
        if other and other.intent != example.intent:
            findings.append(Finding("problem", example.file, example.line,
                                    f"'{example.text}' is also an example of '{other.intent}' "
                                    f"({other.file.name}:{other.line}); keep it under one topic only"))
        seen.setdefault(key, example)


def check_similar(examples: List[Example], findings: List[Finding], threshold: float = SIMILAR) -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = [normalise(e.text) for e in examples]
    if len(texts) < 2:
        return
    matrix = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(texts)
    similarity = (matrix @ matrix.T).tocoo()
    reported = set()
    for i, j, score in zip(similarity.row, similarity.col, similarity.data):
        a, b = examples[i], examples[j]
        if i >= j or score < threshold or a.intent == b.intent or texts[i] == texts[j]:
            continue
        pair = tuple(sorted((a.intent, b.intent)))
        if pair in reported:
            continue
        reported.add(pair)
        findings.append(Finding("warning", b.file, b.line,
                                f"'{b.text}' ({b.intent}) reads almost like '{a.text}' ({a.intent}, "
                                f"{a.file.name}:{a.line}); the assistant may mix these topics up: reword one"))


def check_lengths(responses, findings: List[Finding]) -> None:
    for name, (variants, path, line) in sorted(responses.items()):
        for variant in variants:
            text = (variant or {}).get("text") or ""
            limit = MAX_SMS_CHARS if variant.get("channel") == "twilio" else MAX_ANSWER_CHARS
            if len(text) > limit:
                kind = "SMS variant" if limit == MAX_SMS_CHARS else "answer"
                findings.append(Finding("problem", path, line, f"the {kind} '{name}' is {len(text)} characters; "
                                        f"keep it to {limit} or less so it fits a chat bubble"))


def check_red_flag_examples(examples: List[Example], findings: List[Finding], spacy_model: Path) -> None:
    if not (spacy_model / "meta.json").exists():
        findings.append(Finding("warning", spacy_model, 1, "the spaCy pipeline is not built yet (make spacy), so "
                                "FAQ examples were not checked for red-flag symptoms"))
        return
    sys.path.insert(0, str(ROOT))
    from components.red_flags import detector_for

    detector = detector_for(str(spacy_model))
    for example in examples:
        if example.intent.startswith("faq/"):
            detection = detector.detect(example.text)
            if detection.escalates and detection.tier in ("emergency", "urgent"):
                findings.append(Finding("problem", example.file, example.line,
                                        f"'{example.text}' describes {detection.tier} symptoms "
                                        f"({', '.join(detection.signs)}): the assistant treats such a message as a "
                                        "red flag and gives the safety advice, never this answer; ask it as a "
                                        "question instead (\"what are ...?\") or remove it"))


def check_tests(examples: List[Example], tests_dir: Path, findings: List[Finding]) -> None:
    """Every FAQ needs questions the model never learned from (tests/nlu/) and a test
    conversation (tests/conversations/test_*.yml), so `make test` measures it."""
    held_out = Counter(example.intent for example in read_nlu(tests_dir / "nlu", findings)[0])
    in_conversations = set()
    for path in sorted((tests_dir / "conversations").glob("test_*.yml")):
        for story in (read_yaml(path, findings) or {}).get("stories") or []:
            in_conversations.update(step.get("intent") for step in story.get("steps") or [])
    first: Dict[str, Example] = {}
    for example in examples:
        first.setdefault(example.intent, example)
    for intent, example in sorted(first.items()):
        if held_out[intent] < MIN_TEST_QUESTIONS:
            findings.append(Finding("problem", example.file, example.line,
                                    f"'{intent}' has {held_out[intent]} test question(s) in tests/nlu/; add at "
                                    f"least {MIN_TEST_QUESTIONS} other ways a visitor might ask (not copies of "
                                    "the examples), so the tests measure it (docs/staff-guide.md, step 3)"))
        if intent.startswith("faq/") and intent not in in_conversations:
            findings.append(Finding("problem", example.file, example.line,
                                    f"'{intent}' has no test conversation: add one to a "
                                    "tests/conversations/test_*.yml file (docs/staff-guide.md, step 3)"))


def check(data_dir: Path = ROOT / "data", domain_file: Path = ROOT / "domain.yml",
          spacy_model: Path = ROOT / "build" / "spacy_en", tests_dir: Optional[Path] = None) -> List[Finding]:
    """All content checks; `tests_dir` (tests/) also checks every topic is tested."""
    findings: List[Finding] = []
    examples, responses, _ = gather(data_dir, domain_file, findings)
    check_faqs(examples, responses, findings)
    if tests_dir is not None:
        check_tests(examples, tests_dir, findings)
    check_duplicates(examples, findings)
    check_lengths(responses, findings)
    check_red_flag_examples(examples, findings, spacy_model)
    check_similar(examples, findings)
    return findings


def changed_files() -> Optional[List[str]]:
    """Data files edited since the last commit (None when git can't tell: show everything)."""
    try:
        result = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all", "data"], cwd=ROOT,
                                capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    if result.returncode != 0:
        return None
    return [line[3:].strip().split(" -> ")[-1] for line in result.stdout.splitlines() if line.strip()]


def about_changed_files(finding: Finding, changed: Optional[List[str]]) -> bool:
    if changed is None:
        return True
    return any(str(finding.file).endswith(name) or Path(name).name in finding.message for name in changed)


def main(argv: List[str]) -> int:
    findings = check(tests_dir=ROOT / "tests")
    problems = [f for f in findings if f.level == "problem"]
    warnings = [f for f in findings if f.level != "problem"]
    # Warnings about files nobody touched were seen (and accepted) before: show only
    # the ones about this edit, unless asked for all (make check ALL=1).
    changed = None if "--all" in argv else changed_files()
    shown = [w for w in warnings if about_changed_files(w, changed)]
    for finding in sorted(problems, key=lambda f: (str(f.file), f.line)) + shown:
        print(finding)
    hidden = len(warnings) - len(shown)
    hidden_note = f"; {hidden} older warning(s) about files you didn't change: make check ALL=1" if hidden else ""
    if problems:
        print(f"\n{len(problems)} problem(s) to fix before the assistant can be retrained "
              f"({len(shown)} warning(s){hidden_note}).")
        return 1
    print(f"Content checks: no problems ({len(shown)} warning(s){hidden_note}). Now Rasa's own validation ...")
    return subprocess.run([sys.executable, str(ROOT / "scripts" / "validate_data.py")], cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
