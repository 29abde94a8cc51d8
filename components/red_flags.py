"""Red-flag detection over the project's spaCy pipeline.

Reads spacy_pipeline/red_flags.yml (concepts, signs with tiers, negation cues)
and, for one message, says which red-flag signs it reports and the highest
tier. It works on spaCy tokens: lemmas let "legs"/"peeing" match "leg"/"pee",
norms let "cant" match "can't", and unknown words within one edit (two for
long words) of a pattern word match it, so "blader" and "numbess" count.

Deliberately conservative where it matters: a concept only stops counting
when a negation cue is in its own clause ("no bladder problems, but I can't
feel my groin" still reports saddle numbness). Phrases that contain a
negation as part of the symptom ("can't feel", "no control") keep it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Set, Tuple

import yaml

PATTERNS_FILE = Path(__file__).resolve().parent.parent / "spacy_pipeline" / "red_flags.yml"
TIERS = ("emergency", "urgent", "see_doctor")  # most serious first

CLAUSE_BREAK_WORDS = {"but", "although", "though", "however", "except", "whereas", "yet", "and", "now", "then",
                      "so", "because", "cos", "plus", "also", "while"}
CLAUSE_BREAK_PUNCT = {".", ",", ";", ":", "!", "?", "-", "(", ")", "…", "+", "/", "&"}
FIRST_PERSON = {"i", "i'm", "im", "i've", "ive", "i'd", "id", "my", "me", "myself", "mine", "we", "our", "us"}
QUESTION_STARTS = {"what", "whats", "what's", "how", "is", "are", "can", "could", "does", "do", "should",
                   "when", "why", "which", "at", "would", "will", "who", "any",
                   "if", "suppose", "say", "say,"}  # hypotheticals ("if someone had ...") too
RESOLVING_PRONOUNS = {"it", "that", "this", "which", "they", "both", "everything", "all"}
# Log-probability above which a word counts as real English, never a typo.
COMMON_WORD_LOGPROB = -14.0
PAST_YEAR = re.compile(r"^(19[5-9]\d|20[0-2]\d)$")


@dataclass
class Detection:
    tier: Optional[str] = None               # emergency / urgent / see_doctor / None
    signs: List[str] = field(default_factory=list)
    is_question: bool = False                # asked about red flags, reported nothing
    hinted: bool = False                     # a symptom word of a red flag is present

    @property
    def escalates(self) -> bool:
        return self.tier is not None


@dataclass(frozen=True)
class _Word:
    lower: str
    lemma: str
    norm: str


def _keys(token) -> Set[str]:
    keys = {token.lower_, token.norm_.lower()}
    if token.lemma_:
        keys.add(token.lemma_.lower())
    return {k.replace("’", "'") for k in keys}


def _deletes(word: str, distance: int) -> Set[str]:
    found = {word}
    frontier = {word}
    for _ in range(distance):
        frontier = {w[:i] + w[i + 1:] for w in frontier for i in range(len(w))}
        found |= frontier
    return found


class RedFlagDetector:
    def __init__(self, nlp, patterns: dict, known_words: Optional[Set[str]] = None):
        self.nlp = nlp
        raw = patterns["concepts"]
        self.concepts: Dict[str, List[List[_Word]]] = {
            name: [self._phrase(p) for p in self._expand(raw, name, set())] for name in raw
        }
        self.ignore = [self._phrase(p) for p in patterns.get("ignore", [])]
        negation = patterns.get("negation", {})
        self.neg_before = [self._phrase(p) for p in negation.get("before", [])]
        self.neg_after = [self._phrase(p) for p in negation.get("after", [])]
        self.past = [self._phrase(p) for p in negation.get("past", [])]
        self.signs = patterns["signs"]
        self.hints = list(patterns.get("classifier_hints", []))
        unknown_hints = set(self.hints) - set(self.concepts)
        if unknown_hints:
            raise ValueError(f"red_flags.yml: classifier_hints has unknown concept(s) {sorted(unknown_hints)}")
        for sign in self.signs:
            groups = sign.get("any_of") or [sign["all"]]
            unknown = {n for g in groups for c in g for n in self._names(c)} - set(self.concepts)
            if unknown or sign.get("tier") not in TIERS:
                raise ValueError(f"red_flags.yml: sign '{sign.get('name')}' has unknown concept(s) {unknown} "
                                 f"or tier '{sign.get('tier')}' (use one of {', '.join(TIERS)})")
        # Typo tolerance: a SymSpell-style index of every pattern word.
        self.known_words = known_words or set()
        self._indexes: Dict[int, Dict[str, List[int]]] = {}  # phrase list -> its first-word index
        self._typo_index: Dict[str, Set[str]] = {}
        for phrases in list(self.concepts.values()) + [self.neg_before, self.neg_after]:
            for phrase in phrases:
                for word in phrase:
                    if len(word.lower) >= 5 and word.lower.isalpha():
                        for d in _deletes(word.lower, 2 if len(word.lower) >= 8 else 1):
                            self._typo_index.setdefault(d, set()).add(word.lower)

    @classmethod
    def _expand(cls, raw: dict, name: str, seen: Set[str]) -> List[str]:
        """A concept's phrases; an entry "+other" includes concept `other`."""
        if name in seen:
            raise ValueError(f"red_flags.yml: concept '{name}' includes itself")
        if name not in raw:
            raise ValueError(f"red_flags.yml: unknown concept '+{name}'")
        phrases = []
        for entry in raw[name]:
            entry = str(entry)
            if entry.startswith("+"):
                phrases += cls._expand(raw, entry[1:], seen | {name})
            else:
                phrases.append(entry)
        return phrases

    @staticmethod
    def _names(condition) -> List[str]:
        """Concept names in a condition: a name, or {near: [a, b]}."""
        return list(condition["near"]) if isinstance(condition, dict) else [condition]

    def _phrase(self, text: str) -> List[_Word]:
        doc = self.nlp(str(text).lower())
        return [
            _Word(t.lower_.replace("’", "'"), (t.lemma_ or t.lower_).lower(), t.norm_.lower().replace("’", "'"))
            for t in doc
        ]

    @staticmethod
    def _negates(doc, start: int, end: int) -> bool:
        """A contracted "n't" negates after "be" ("isn't dragging") and with "have"
        ("don't have any numbness", "haven't had a fall"); elsewhere it is part of a symptom ("i don't get
        the urge to pee", "haven't been able to empty my bladder")."""
        if end - start == 1 and doc[start].lower_ in ("n't", "nt", "n’t"):
            before = doc[start - 1].lemma_.lower() if start > 0 else ""
            after = doc[end].lemma_.lower() if end < len(doc) else ""
            after2 = doc[end + 1].lower_ if end + 1 < len(doc) else ""
            if before == "be":  # "my foot isn't dragging", "it wasn't numb"
                return True
            return (before == "have" and after in ("have", "get", "any", "a", "notice")) or (
                after == "have" and after2 not in ("to",)
            )
        return True

    # --- matching -------------------------------------------------------------
    def _typo_candidates(self, token) -> Set[str]:
        word = token.lower_
        if len(word) < 5 or not word.isalpha() or word in self.known_words:
            return set()
        edits = 2 if len(word) >= 8 else 1
        if edits == 2 and any(candidate in self.known_words for candidate in _edits1(word)):
            # One edit from a real word ("wallking" -> walking): that is the typo, so
            # don't reach two edits away for a pattern word ("falling").
            edits = 1
        found: Set[str] = set()
        for d in _deletes(word, edits):
            found |= self._typo_index.get(d, set())
        return found

    @staticmethod
    def _word_matches(word: _Word, keys: Set[str], typos: Set[str]) -> bool:
        if word.lower in keys or word.norm in keys or word.lower in typos:
            return True
        # A pattern word written in its base form ("leg") matches every form ("legs").
        return word.lower == word.lemma and word.lemma in keys

    @staticmethod
    def _first_word_index(phrases: List[List[_Word]]) -> Dict[str, List[int]]:
        """Which phrases can start at a token, by the keys their first word matches
        (the same test as _word_matches), so _find tries a handful of phrases per
        token instead of all of them."""
        index: Dict[str, List[int]] = {}
        for number, phrase in enumerate(phrases):
            first = phrase[0]
            terms = {first.lower, first.norm} | ({first.lemma} if first.lower == first.lemma else set())
            for term in terms:
                index.setdefault(term, []).append(number)
        return index

    def _find(self, phrases: List[List[_Word]], keys, typos, blocked: Set[int]) -> List[Tuple[int, int]]:
        index = self._indexes.get(id(phrases))
        if index is None:
            index = self._indexes[id(phrases)] = self._first_word_index(phrases)
        found = []
        n = len(keys)
        for start in range(n):
            candidates = {number for term in keys[start] | typos[start] for number in index.get(term, ())}
            for number in candidates:
                phrase = phrases[number]
                size = len(phrase)
                if start + size > n or any(i in blocked for i in range(start, start + size)):
                    continue
                if all(self._word_matches(phrase[j], keys[start + j], typos[start + j]) for j in range(size)):
                    found.append((number, start, start + size))
        return [(start, end) for _, start, end in sorted(found)]  # in phrase order, as before

    @staticmethod
    def _clauses(doc) -> List[int]:
        """Clause number of each token."""
        clause, numbers = 0, []
        for token in doc:
            if token.lower_ in CLAUSE_BREAK_PUNCT or token.lower_ in CLAUSE_BREAK_WORDS or token.is_space:
                clause += 1
                numbers.append(-1)
            else:
                numbers.append(clause)
        return numbers

    def detect(self, text: str, doc=None) -> Detection:
        doc = doc if doc is not None else self.nlp(text.lower())
        keys = [_keys(t) for t in doc]
        typos = [self._typo_candidates(t) for t in doc]
        clause_of = self._clauses(doc)

        blocked: Set[int] = set()
        for start, end in self._find(self.ignore, keys, typos, set()):
            blocked.update(range(start, end))

        concept_spans: Dict[str, List[Tuple[int, int]]] = {
            name: self._find(phrases, keys, typos, blocked) for name, phrases in self.concepts.items()
        }
        # Negations that are part of a symptom phrase ("can't feel") are not negations.
        in_phrase = {i for spans in concept_spans.values() for s, e in spans if e - s > 1 for i in range(s, e)}
        cue_block = blocked | in_phrase

        negated_tokens: Set[int] = set()
        for start, end in self._find(self.neg_before, keys, typos, cue_block):
            if not self._negates(doc, start, end):
                continue
            clause = clause_of[start]
            for i in range(end, min(len(doc), end + 8)):
                if clause_of[i] != clause and clause_of[i] != -1:
                    break
                negated_tokens.add(i)
        for start, end in self._find(self.neg_after, keys, typos, cue_block):
            clause = clause_of[start]
            clauses = {clause}
            opens_clause = start == 0 or clause_of[start - 1] != clause
            refers_back = any(doc[i].lower_ in RESOLVING_PRONOUNS for i in range(end) if clause_of[i] == clause)
            earlier = [c for c in clause_of[:start] if 0 <= c < clause]
            if refers_back:
                # "... sciatica in both legs, he's 6 now and it went after the birth":
                # "it" can point back to anything earlier in the same sentence.
                sentence_start = max([i + 1 for i in range(start) if doc[i].lower_ in ".!?\n"] + [0])
                clauses.update(c for c in clause_of[sentence_start:start] if c >= 0)
            elif opens_clause and earlier:
                # "numb for a bit, fine now": the previous clause resolved.
                clauses.add(max(earlier))
            negated_tokens.update(i for i in range(start) if clause_of[i] in clauses)
        past_clauses = {clause_of[s] for s, _ in self._find(self.past, keys, typos, cue_block)}
        for i, token in enumerate(doc):
            if PAST_YEAR.match(token.text) and i > 0 and doc[i - 1].lower_ == "in":
                past_clauses.add(clause_of[i])

        def live(concept: str, past_ok: bool) -> List[Tuple[int, int]]:
            return [
                (start, end)
                for start, end in concept_spans[concept]
                if not any(i in negated_tokens for i in range(start, end))
                and (past_ok or clause_of[start] not in past_clauses)
            ]

        def holds(condition, past_ok: bool) -> bool:
            if isinstance(condition, dict):  # {near: [a, b], within: N}: a and b close together
                first, second = condition["near"]
                within = int(condition.get("within", 4))
                return any(
                    abs(s1 - s2) <= within or abs(e1 - s2) <= within or abs(e2 - s1) <= within
                    for s1, e1 in live(first, past_ok)
                    for s2, e2 in live(second, past_ok)
                )
            return bool(live(condition, past_ok))

        signs = []
        for sign in self.signs:
            groups = sign.get("any_of") or [sign["all"]]
            past_ok = bool(sign.get("past_ok"))
            if any(all(holds(c, past_ok) for c in group) for group in groups):
                signs.append(sign)

        if not signs:
            return Detection(hinted=any(live(h, True) for h in self.hints))
        words = {t.lower_ for t in doc}
        first = doc[0].lower_ if len(doc) else ""
        if len(doc) > 1 and doc[1].lower_ in ("n't", "nt", "n’t"):
            first = ""  # "dont get the urge to poo": a statement, not "do ...?"
        # Only a message that *starts* as a question (or an "if ...") and speaks
        # of nobody in particular is a question about red flags; "fever and back pain, is
        # massage ok?" reports one.
        hypothetical = first in QUESTION_STARTS and "if" in words  # "should i call 911 if my legs go numb?"
        if (first in QUESTION_STARTS and not (words & FIRST_PERSON)) or hypothetical:
            # "what is cauda equina?" / "can sciatica affect both legs?": information, not a report.
            return Detection(is_question=True, signs=[s["name"] for s in signs])
        tier = min((s["tier"] for s in signs), key=TIERS.index)
        if tier == "see_doctor" and first in QUESTION_STARTS:
            # "will massage make my sciatica worse?" is a question for the FAQ answers;
            # emergency and urgent signs are escalated even inside a question.
            return Detection(is_question=True, signs=[s["name"] for s in signs])
        return Detection(tier=tier, signs=[s["name"] for s in signs if s["tier"] == tier])


@lru_cache(maxsize=4)
def detector_for(model_path: str, patterns_file: str = str(PATTERNS_FILE)) -> RedFlagDetector:
    import spacy

    nlp = spacy.load(model_path)
    patterns = yaml.safe_load(Path(patterns_file).read_text(encoding="utf-8"))
    return RedFlagDetector(nlp, patterns, known_words=load_known_words())


def _edits1(word: str) -> Set[str]:
    """Every string one deletion, transposition, replacement or insertion away."""
    letters = "abcdefghijklmnopqrstuvwxyz"
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    return ({a + b[1:] for a, b in splits if b}
            | {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
            | {a + c + b[1:] for a, b in splits if b for c in letters}
            | {a + c + b for a, b in splits for c in letters})


def load_known_words() -> Set[str]:
    """English words from spacy-lookups-data (lemma table and frequent words). A real word is never "corrected" to a pattern word: "ladder" must
    not become "bladder"."""
    import gzip
    import json

    import spacy_lookups_data

    data = Path(spacy_lookups_data.__file__).parent / "data"
    with gzip.open(data / "en_lemma_lookup.json.gz", "rt", encoding="utf-8") as handle:
        table = json.load(handle)
    words = {w.lower() for w in table} | {w.lower() for w in table.values()}
    # Frequent words from the word-probability table ("never", "ladder"). Rare
    # entries are left out on purpose: web-text typos such as "controll" sit there.
    with gzip.open(data / "en_lexeme_prob.json.gz", "rt", encoding="utf-8") as handle:
        words |= {w.lower() for w, logprob in json.load(handle).items() if logprob > COMMON_WORD_LOGPROB}
    return words
