"""The FAQ titles, read from data/faq/*.yml.

Each FAQ file's first example is its title (a clean question such as "What
causes sciatica?"). Buttons show it and send it back as the visitor's message,
so adding an FAQ file adds its button target with no code change.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Dict, Optional

import yaml

FAQ_DIR = Path(__file__).resolve().parent.parent / "data" / "faq"


def _first_example(examples: str) -> Optional[str]:
    for line in examples.splitlines():
        line = line.strip()
        if line.startswith("- "):
            return line[2:].strip()
    return None


def load_titles(faq_dir: Path = FAQ_DIR) -> Dict[str, str]:
    """Maps 'faq/<name>' to its title question."""
    titles: Dict[str, str] = {}
    for path in sorted(faq_dir.glob("*.yml")):
        content = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for block in content.get("nlu") or []:
            intent = block.get("intent", "")
            title = _first_example(block.get("examples", ""))
            if intent.startswith("faq/") and title:
                titles[intent] = title
    return titles


@lru_cache(maxsize=1)
def titles() -> Dict[str, str]:
    return load_titles()
