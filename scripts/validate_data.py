"""`rasa data validate`, failing on every warning except two that are wrong here.

Rasa 3.6 warns about responses "not used in any story or rule" even when a form
asks with them (utter_ask_<slot>) or an action sends them by name, and about
the retrieval intent `faq` being "duplicated" because every data/faq/ file
declares it. Those two are filtered only when they are true: the response
really is a form question or named in actions/*.py (`utter_faq`: the answers
action_answer_faq sends). Anything else fails.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
RASA = ROOT / ".venv" / "bin" / "rasa"


def used_outside_stories(root: Path = ROOT) -> set:
    domain = yaml.safe_load((root / "domain.yml").read_text())
    form_slots = {slot for form in (domain.get("forms") or {}).values() for slot in form.get("required_slots", [])}
    used = {f"utter_ask_{slot}" for slot in form_slots}
    code = "\n".join(p.read_text() for p in (ROOT / "actions").glob("*.py"))
    used |= set(re.findall(r"""["'](utter_[a-z_]+)["']""", code))
    # f"utter_{slot}_needs_yes_or_no" in actions/booking.py
    used |= {f"utter_{slot}_needs_yes_or_no" for slot in form_slots if f"utter_{slot}_needs_yes_or_no" in
             (domain.get("responses") or {}) and "_needs_yes_or_no" in code}
    if '"action_answer_faq"' in code:
        used.add("utter_faq")  # the retrieval answers: action_answer_faq sends the one selected
    return used


def main(root: Path = ROOT) -> int:
    """Validates the project in `root` (this one by default; merge_labelled.py's tests use a copy)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # config.yml names this project's components
    result = subprocess.run([str(RASA), "data", "validate"], cwd=root, capture_output=True, text=True, env=env)
    output = result.stdout + result.stderr
    print(output[-4000:] if result.returncode else "", end="")
    if result.returncode:
        return result.returncode
    allowed = used_outside_stories(root)
    problems = []
    for line in output.splitlines():
        if "UserWarning" not in line and "is not used in any story" not in line:
            continue
        if "duplicated intents have been found across multiple domain files: faq" in line:
            continue
        unused = re.search(r"The utterance '([^']+)' is not used in any story or rule", line)
        if unused and unused.group(1) in allowed:
            continue
        problems.append(line.strip())
    if problems:
        print("Data validation warnings:\n  " + "\n  ".join(problems))
        return 1
    print("Data valid: domain, NLU data, stories and rules agree "
          f"({len(allowed)} responses are sent by forms or actions rather than by rules).")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT))
