"""Builds the project's English spaCy pipeline into build/spacy_en.

No pretrained spaCy model can be downloaded on our machines, and the assistant
does not need one: Rasa's DIET/ResponseSelector learn from the training data.
What spaCy gives us is tokenisation, lemmas (so "legs", "stretches" and
"stretching" count as the same word for the featurizers) and an entity_ruler
that tags techniques, body parts and symptoms from entity_patterns.yml.

Usage: python -m spacy_pipeline.build [OUTPUT_DIR]
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Dict, Iterable, List

import spacy
import yaml

HERE = Path(__file__).resolve().parent
PATTERNS_FILE = HERE / "entity_patterns.yml"
DEFAULT_OUTPUT = HERE.parent / "build" / "spacy_en"


def load_patterns(path: Path = PATTERNS_FILE) -> Dict[str, Dict[str, List[str]]]:
    """Reads the staff-editable YAML and checks its shape, naming the bad entry."""
    with path.open(encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected kinds of things (technique:, body_part:, ...) at the top")
    for label, values in data.items():
        if not isinstance(values, dict):
            raise ValueError(f"{path}: '{label}' should list names, each with its phrases")
        for value, phrases in values.items():
            if not isinstance(phrases, list) or not all(isinstance(p, str) and p.strip() for p in phrases):
                raise ValueError(f"{path}: '{label}' -> '{value}' should be a list of phrases")
    return data


def ruler_patterns(nlp: spacy.Language, data: Dict[str, Dict[str, List[str]]]) -> Iterable[dict]:
    """One token pattern per phrase, matched on lemmas of the lower-cased words.

    Matching lemmas rather than the text lets one entry cover its inflections.
    The canonical name goes into the pattern id (ent_id_), so code can map any
    phrasing back to it.
    """
    seen = set()
    for label, values in data.items():
        for value, phrases in values.items():
            for phrase in phrases:
                doc = nlp(phrase.lower())
                lemmas = tuple(token.lemma_.lower() or token.lower_ for token in doc)
                if (label, lemmas) in seen:
                    continue
                seen.add((label, lemmas))
                yield {
                    "label": label,
                    "id": value,
                    "pattern": [{"LEMMA": {"IN": sorted({lemma, tok.lower_})}} for lemma, tok in zip(lemmas, doc)],
                }


def build(output: Path = DEFAULT_OUTPUT) -> Path:
    nlp = spacy.blank("en")
    # Lookup tables come from spacy-lookups-data; the rule-based lemmatizer
    # would need a POS tagger, which a blank pipeline does not have.
    nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
    nlp.initialize()
    patterns = list(ruler_patterns(nlp, load_patterns()))
    ruler = nlp.add_pipe("entity_ruler", config={"overwrite_ents": True})
    ruler.add_patterns(patterns)
    nlp.meta["name"] = "sciatica_en"
    nlp.meta["description"] = "Blank English + lookup lemmatizer + entity_ruler from entity_patterns.yml"
    output.parent.mkdir(parents=True, exist_ok=True)
    nlp.to_disk(output)
    return output


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    print(f"spaCy pipeline written to {build(target)}")
