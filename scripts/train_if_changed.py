"""Trains the model only when something it is built from has changed.

The fingerprint covers config.yml, domain.yml, data/, the built spaCy pipeline
the project's custom NLU components and the red-flag corpus. Rasa's own change detection does not
notice a rebuilt spaCy pipeline (it only sees the path in config.yml), hence
this script. Usage: python scripts/train_if_changed.py [--force]
"""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "sciatica.tar.gz"
STAMP = ROOT / "models" / "sciatica.fingerprint.json"
DATA_INPUTS = ["config.yml", "domain.yml", "data"]
# Rasa caches trained components between runs but cannot see changes to these,
# so when they change we retrain from scratch (--force).
CODE_INPUTS = ["build/spacy_en", "components", "data/red_flag_corpus"]


def fingerprint(inputs) -> str:
    digest = hashlib.sha256()
    for name in inputs:
        path = ROOT / name
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def main() -> int:
    current = {"data": fingerprint(DATA_INPUTS), "code": fingerprint(CODE_INPUTS)}
    previous = json.loads(STAMP.read_text()) if STAMP.exists() else {}
    if "--force" not in sys.argv and MODEL.exists() and previous == current:
        print(f"Model is up to date ({MODEL.relative_to(ROOT)}); nothing changed since it was trained.")
        return 0
    print("Training the model (data, config or pipeline changed) ...", flush=True)
    rasa = Path(sys.executable).parent / "rasa"
    command = [str(rasa), "train", "--fixed-model-name", MODEL.name.replace(".tar.gz", ""), "--out", str(MODEL.parent)]
    if "--force" in sys.argv or previous.get("code") != current["code"]:
        command.append("--force")
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode != 0:
        print("Training failed; see the messages above.", file=sys.stderr)
        return result.returncode
    STAMP.write_text(json.dumps(current) + "\n")
    print(f"Model written to {MODEL.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
