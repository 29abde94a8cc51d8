"""Red-flag detection over the project's spaCy pipeline.

Reads spacy_pipeline/red_flags.yml (concepts, signs with tiers, negation cues)
and, for one message, says which red-flag signs it reports and the highest
tier. It works on spaCy tokens: lemmas let "legs"/"peeing" match "leg"/"pee",
norms let "cant" match "can't", and unknown words within one edit (two for
long words) of a pattern word match it, so "blader" and "numbess" count.

A sign counts only when its words are a report of the visitor's body now (or
of someone with them now). A concept's mention stops counting when it is:
- denied: a negation cue is in its own clause ("no bladder problems, but I
  can't feel my groin" still reports saddle numbness); a cue in front of a word
  for a working function is the symptom, not a denial ("don't get the urge",
  "neither leg has proper feeling");
- resolved or in the past ("fine now", "in 2019", "years ago"), unless the
  message says it is back ("... but I'm leaking again");
- hypothetical or about signs in general ("what if my groin went numb?", "my
  physio told me to watch for ..."): then the message is a question, unless a
  time anchor says it is happening ("what does it mean if ... ? it started today");
- someone else's story told in the past ("my friend had cauda equina and lost
  control of her bladder"): another person's signs count when the message speaks
  of them now ("my husband can't feel his legs") or tells no story, and an
  animal's or a caseload's at work ("my patients are incontinent") never do;
- explained by an everyday cause named in the same sentence ("both legs are dead
  after crossfit", "bum numb from the sofa");
- said of another body part: in "pins and needles in my leg and pain in my bum"
  the numbness is the leg's, not the saddle area's (`{said_of: [numb, saddle_area]}`).
Everything else escalates: when in doubt, the sign counts.
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
SENTENCE_END = {".", "!", "?", "…"}
FIRST_PERSON = {"i", "i'm", "im", "i've", "ive", "i'd", "id", "my", "me", "myself", "mine", "we", "our", "us"}
# Not "they"/"them": in these messages they are mostly legs or feet ("both of them are numb").
OTHER_PRONOUNS = {"he", "she", "him", "her", "his", "hers", "himself", "herself"}
GENERIC_PEOPLE = {"someone", "somebody", "anyone", "anybody", "people", "person", "everyone", "everybody",
                  "yourself"}
QUESTION_STARTS = {"what", "whats", "what's", "how", "is", "are", "can", "could", "does", "do", "should",
                   "when", "why", "which", "at", "would", "will", "who", "any"}
# Words a message or sentence may open with before its real start ("hi, can sciatica ...").
OPENERS = {"hi", "hello", "hey", "hiya", "ok", "okay", "so", "um", "umm", "well", "also", "and", "but", "quick",
           "question", "q", "just", "sorry", "please", "btw", "oh", "good", "morning", "afternoon", "evening",
           "thanks", "thank", "you", "there", "ps", "yes", "yeah"}
# Present-tense words that place another person's sign in the present ("my dad can't feel his legs").
PRESENT_VERBS = {"is", "are", "has", "have", "ca", "can", "cannot", "wo", "keeps", "keep", "says", "seems",
                 "looks", "feels", "needs", "does", "do", "am", "now", "here", "'re"}
# "can sciatica make me incontinent?": what a sign could be caused by is a question about it.
CAUSE_VERBS = {"cause", "make", "lead", "give", "trigger", "bring", "result", "affect", "mean"}
CAUSE_SCOPE_END = {"that", "because", "since", "as", "but", "cos"}
FEEL_PLACES = {"in", "down", "below", "anything", "when", "there", "it", "them", "thing", "much"}
NOT_WORDS = {"not", "n't", "never"}
DEFINITION_WORDS = {"mean", "means", "meant", "meaning"}
TIME_UNITS = {"minute", "min", "mins", "hour", "hr", "hrs", "day", "week", "wk", "month", "night", "morning"}
# Words between a part and a symptom said of it: "my bum has gone kind of numb".
LINKING = {"is", "are", "was", "were", "feel", "feels", "felt", "feeling", "has", "have", "had", "gone", "went",
           "go", "goes", "going", "been", "getting", "got", "gotten", "become", "becoming", "so", "very",
           "really", "completely", "totally", "fully", "bit", "a", "kind", "sort", "of", "all", "both", "'s", "'re",
           "'ve", "keep", "keeps", "still", "now", "also", "too", "quite", "pretty", "slightly", "literally",
           "just", "turned", "turning", "kinda", "abit", "super", "weirdly", "strangely", "oddly"}
# Words between a symptom and the part it names after it: "tingling down to my toes".
AFTER_SYMPTOM = {"in", "into", "down", "round", "around", "between", "on", "to", "through", "across", "at",
                 "under", "over", "my", "the", "both", "of", "either", "all", "his", "her", "your", "from", "up",
                 "patch", "patches", "area", "spot", "bit", "bits", "right", "left", "back", "front", "side",
                 "sides", "outside", "inside", "top", "whole", "middle", "one", "other", "a", "an", "this", "that",
                 "each", "length", "rest", "feeling", "feelings", "sensation", "myself", "it", "when", "big",
                 "little", "lower", "upper", "outer", "inner", "is", "are", "has", "have", "'s", "'ve", "now",
                 "also", "even", "too", "spread", "spreading", "spreads", "moved", "moving", "moves", "gone", "going",
                 "goes", "went", "travelled", "traveled", "travels", "travelling", "radiates", "radiating", "shoots",
                 "shooting", "shot", "runs", "running", "ran", "reached", "reaching", "reaches", "extends",
                 # "numb where the bike saddle sits": the place told by what touches it
                 "where", "bike", "bicycle", "cycling", "horse", "riding"}
# Between symptoms said of one part: "my bum aches and tingles".
# "can't feel the chair under my bum": the words that lead from what is felt to the area.
TOUCHED_THROUGH = {"on", "under", "against", "between", "around", "round"}
SYMPTOM_LIST = {"and", "or", ",", "&", "+", "n", "really", "very", "so", "a", "bit", "is", "are", "feel", "feels"}
COORDINATION = {"and", "or", "&", "+", "n", "my", "the", "both", "his", "her", "your", "also", "even"}
WH_WORDS = {"what", "whats", "what's", "how", "when", "why", "which", "who"}
# "is that", "should I", "would you": a question starting inside a sentence.
ASKED_ABOUT = {"i", "you", "we", "they", "he", "she", "it", "that", "this", "someone", "my"}
# Present states in an if-clause: "if I've got", "if my legs are", "if I can't".
STATIVE = {"have", "'ve", "has", "am", "'m", "is", "are", "'s", "'re", "ca", "cannot", "keep", "keeps", "been",
           "currently", "already", "still"}
# Verbs that tell a story in the past ("my friend had ...", "her face drooped"); "-ed" forms count too.
PAST_FORMS = {"had", "was", "were", "went", "got", "lost", "fell", "broke", "passed", "died", "said", "told",
              "became", "came", "took", "did", "used", "ended", "turned", "needed", "couldn't", "could"}
# "scared" lemmatises to "scare": being afraid now is not "a scare" that is over (a past cue).
AFRAID = {"scared", "scary", "scares", "scaring"}
KNOWING = {"know", "tell", "sure", "notice", "realise", "realize", "feel"}
RESOLVING_PRONOUNS = {"it", "that", "this", "which", "they", "both", "everything", "all", "he", "she"}
# Log-probability above which a word counts as real English, never a typo.
COMMON_WORD_LOGPROB = -14.0
PAST_YEAR = re.compile(r"^(19[5-9]\d|20[0-2]\d)$")


@dataclass
class Detection:
    tier: Optional[str] = None               # emergency / urgent / see_doctor / None
    signs: List[str] = field(default_factory=list)
    is_question: bool = False                # asked about red flags, reported nothing
    hinted: bool = False                     # a symptom word of a red flag is present
    cleared: bool = False                    # a sign was mentioned, but denied, over, someone else's
                                             # or with an everyday cause ("no numbness down there")

    @property
    def escalates(self) -> bool:
        return self.tier is not None


@dataclass(frozen=True)
class _Word:
    lower: str
    lemma: str
    norm: str


@dataclass
class _Message:
    """One message's tokens and what detect() works out about them step by step."""
    doc: object
    keys: List[Set[str]]                     # each token's text, norm and lemma
    typos: List[Set[str]]                    # pattern words each token may be a typo of
    clause_of: List[int]                     # clause number per token (-1 at a break)
    sentence_of: List[int]
    blocked: Set[int] = field(default_factory=set)        # inside an idiom or everyday phrase
    phrase_end: Dict[int, int] = field(default_factory=dict)  # token in a multi-word concept -> its end
    cue_block: Set[int] = field(default_factory=set)      # where no resolution/past cue may start

    @property
    def n(self) -> int:
        return len(self.keys)


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
        # concept -> the concepts whose "+name" entries take in its words (itself included)
        self.included_in: Dict[str, Set[str]] = {
            name: {other for other in raw if self._includes(raw, other, name)} for name in raw
        }
        self.ignore = [self._phrase(p) for p in patterns.get("ignore", [])]
        self.not_followed_by = [
            ([self._phrase(phrase)], [self._phrase(words) for words in following])
            for phrase, following in (patterns.get("not_followed_by") or {}).items()
        ]
        negation = patterns.get("negation", {})
        self.neg_before = [self._phrase(p) for p in negation.get("before", [])]
        self.neg_after = [self._phrase(p) for p in negation.get("after", [])]
        self.past = [self._phrase(p) for p in negation.get("past", [])]
        self.recurrence = [self._phrase(p) for p in negation.get("again", [])]
        self.over = [self._phrase(p) for p in negation.get("over", [])]
        self.once = set(negation.get("once", []))  # events "again" does not bring back
        self.history = set(negation.get("history", []))  # what being over does not clear
        # word for a working function -> the concepts its negation reports
        self.intact: Dict[str, Set[str]] = {}
        for concept, words in negation.get("intact", {}).items():
            for word in words:
                if len(self._phrase(word)) != 1:
                    raise ValueError(f"red_flags.yml: negation intact '{word}' should be one word")
                for key in self._lemmas(word):
                    self.intact.setdefault(key, set()).add(concept)
        self.intact_words = set(self.intact)
        self.fillers = {w for p in negation.get("fillers", []) for w in self._lemmas(p)}
        self.areas = set(negation.get("areas", []))
        self.deniable = set(negation.get("symptoms", []))
        almost = negation.get("almost", {})
        self.almost = [self._phrase(p) for p in almost.get("words", [])]
        self.almost_concepts = set(almost.get("concepts", []))
        hypothetical = patterns.get("hypothetical", {})
        self.conditional = [self._phrase(p) for p in hypothetical.get("conditional", [])]
        self.topic = [self._phrase(p) for p in hypothetical.get("topic", [])]
        self.current = [self._phrase(p) for p in hypothetical.get("current", [])]
        people = patterns.get("people", {})
        self.others = {w for p in people.get("others", []) for w in self._lemmas(p)}
        self.animals = {w for p in people.get("animals", []) for w in self._lemmas(p)}
        self.work = {w.lower for p in people.get("work", []) for w in self._phrase(p)}  # as written, not lemmas
        self.everyday = [
            {
                "symptoms": [self._phrase(p) for p in entry["symptoms"]],
                "causes": [self._phrase(p) for p in entry["causes"]],
                "areas": [self._phrase(p) for p in entry.get("areas", [])],
                "unless": [self._phrase(p) for p in entry.get("unless", [])],
            }
            for entry in patterns.get("everyday", [])
        ]
        self.attach = patterns.get("attach", {})
        if set(self.attach.values()) - set(self.concepts):
            raise ValueError(f"red_flags.yml: attach names unknown concept(s) {set(self.attach.values())}")
        self.signs = patterns["signs"]
        self.hints = list(patterns.get("classifier_hints", []))
        unknown_hints = set(self.hints) - set(self.concepts)
        if unknown_hints:
            raise ValueError(f"red_flags.yml: classifier_hints has unknown concept(s) {sorted(unknown_hints)}")
        unknown_named = (self.areas | self.deniable | self.almost_concepts | self.once | self.history
                         | set(negation.get("intact", {}))) - set(self.concepts)
        if unknown_named:
            raise ValueError(f"red_flags.yml: negation names unknown concept(s) {sorted(unknown_named)}")
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

    @classmethod
    def _includes(cls, raw: dict, name: str, part: str) -> bool:
        return name == part or any(
            str(entry).startswith("+") and cls._includes(raw, str(entry)[1:], part) for entry in raw[name]
        )

    @staticmethod
    def _names(condition) -> List[str]:
        """Concept names in a condition: a name, {near: [a, b]} or {said_of: [symptom, area]}."""
        if isinstance(condition, dict):
            return list(condition.get("near") or condition["said_of"])
        return [condition]

    def _phrase(self, text: str) -> List[_Word]:
        doc = self.nlp(str(text).lower())
        return [
            _Word(t.lower_.replace("’", "'"), (t.lemma_ or t.lower_).lower(), t.norm_.lower().replace("’", "'"))
            for t in doc
        ]

    def _lemmas(self, text: str) -> Set[str]:
        return {k for w in self._phrase(text) for k in (w.lower, w.lemma)}

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

    @staticmethod
    def _sentences(doc) -> List[int]:
        sentence, numbers = 0, []
        for token in doc:
            numbers.append(sentence)
            if token.lower_ in SENTENCE_END or (token.is_space and "\n" in token.text):
                sentence += 1
        return numbers

    @staticmethod
    def _states_a_fact(doc, start: int) -> bool:
        """Does an if-clause starting at `start` state the visitor's present state ("if I've got a
        fever", "if my legs are numb") rather than imagine one ("if my legs went numb", "if I ever
        lose control", "if I get numbness")?"""
        words = [doc[i].lower_ for i in range(start, min(len(doc), start + 5))]
        if not words or words[0] not in FIRST_PERSON:
            return False
        for word in words[1:]:
            if word in STATIVE:
                return True
            if word in ("ever", "get", "got", "go", "went", "had", "were", "was", "did", "lose", "lost"):
                return False
        return False

    @staticmethod
    def _in_simile(doc, clause_of, position: int) -> bool:
        """Is this word inside "like I've been ...", "as if I'd ..." (a comparison, not what happened)?"""
        for i in range(position - 1, -1, -1):
            if clause_of[i] != clause_of[position]:
                return False
            if doc[i].lower_ in ("like", "if", "though") and i + 1 < len(doc) and (
                    doc[i + 1].lower_ in FIRST_PERSON | GENERIC_PEOPLE):
                return True
        return False

    @staticmethod
    def _durations(doc) -> List[int]:
        """Where a duration says something is going on: "for 3 days", "for a couple of hours"."""
        return [
            i for i, token in enumerate(doc)
            if token.lower_ == "for"
            and any(doc[j].lemma_.lower() in TIME_UNITS for j in range(i + 1, min(len(doc), i + 5)))
        ]

    @staticmethod
    def _opening(doc, start: int, sentence_of: List[int]) -> str:
        """The first real word of the sentence that starts at `start`, after greetings and fillers."""
        for i in range(start, len(doc)):
            if sentence_of[i] != sentence_of[start]:
                break
            word = doc[i].lower_
            if word in OPENERS or doc[i].is_punct or doc[i].is_space:
                continue
            if i + 1 < len(doc) and doc[i + 1].lower_ in ("n't", "nt", "n’t"):
                return ""  # "dont get the urge to poo": a statement, not "do ...?"
            return word
        return ""

    # --- who a mention belongs to -------------------------------------------------
    def _owners(self, doc, keys, sentence_of, concept_starts: Set[int]) -> List[Optional[str]]:
        """For each token, whose body the words at that point are about: "self", "other" (a person
        named or "he"/"she"), "animal", "generic" ("your groin", "someone") or None (nobody named yet
        in this sentence). The nearest person named earlier in the sentence wins."""
        owners: List[Optional[str]] = []
        current: Optional[str] = None
        last_named: Optional[str] = None  # what "he"/"she"/"his" points back to
        for i, token in enumerate(doc):
            if i > 0 and sentence_of[i] != sentence_of[i - 1]:
                current = None
            word = token.lower_
            if keys[i] & self.animals:
                current = last_named = "animal"
            elif word in self.work:
                current = last_named = "work"
            elif keys[i] & self.others:
                current = last_named = "other"
            elif word in FIRST_PERSON and not (word == "mine" and i > 0 and doc[i - 1].lower_ == "of"):
                current = "self"  # but "a friend of mine had ..." is the friend
            elif word in OTHER_PRONOUNS:
                current = last_named or "other"
            elif word in GENERIC_PEOPLE:
                if not (i > 0 and doc[i - 1].lower_ in ("like", "if", "though")):
                    current = "generic"  # but "feels like someone's standing on it" is a comparison
            elif word == "your" and any(j in concept_starts for j in range(i + 1, i + 3)):
                # "is it serious if you can't feel your bum?" ("you" alone is mostly the clinic)
                current = "generic"
            owners.append(current)
        return owners

    # --- which body part a symptom is about ----------------------------------------------
    @staticmethod
    def _attached(doc, sentence_of, symptom: Tuple[int, int], area: Tuple[int, int],
                  parts: List[Tuple[int, int]], symptom_words: List[Tuple[int, int]]) -> bool:
        """Is the symptom said of this body area? "my bum and leg are numb", "numbness in my groin",
        "my groin. it's numb" yes; "pins and needles in my leg and pain in my bum", "my bum aches and
        my foot is numb", "pain in my buttock and tingling down to my toes" no: another part or
        symptom is in between, or the symptom has its own part right next to it."""
        (s, e), (a, b) = symptom, area
        if a < e and s < b:
            return True  # one phrase ("can't feel my bum")
        group = RedFlagDetector._coordinated(doc, area, parts)
        others = [p for p in parts if p not in group and not (p[0] < e and s < p[1])]
        if a > s:
            # After the symptom only as its place: "numbness round my back passage", "numb bum".
            if sentence_of[s] != sentence_of[a]:
                return False
            if all(doc[i].lower_ in AFTER_SYMPTOM for i in range(e, a)):
                return True
            # "couldn't feel the razor on my groin", "can't feel the chair under my bum": what the area
            # should have felt, then the area.
            gap = [doc[i].lower_ for i in range(e, a)]
            return (any(doc[i].lemma_.lower() == "feel" for i in range(s, e)) and len(gap) <= 5
                    and bool(set(gap[-2:]) & TOUCHED_THROUGH)
                    and not set(gap) & (CLAUSE_BREAK_WORDS | CLAUSE_BREAK_PUNCT)
                    and not any(ps < a and e <= ps for ps, _ in others))
        gap = range(b, s)
        if any(ps < s and b < pe for ps, pe in others):
            return False  # another body part in between
        if sentence_of[s] != sentence_of[a]:
            # "my groin. it's gone numb": a later sentence naming no part of its own.
            return not any(sentence_of[ps] == sentence_of[s] for ps, _ in others)
        if len(gap) > 8 or any(doc[i].lower_ in SENTENCE_END for i in gap):
            return False
        for ws, we in symptom_words:
            if ws >= b and we <= s and not all(doc[i].lower_ in SYMPTOM_LIST for i in range(we, s)):
                return False  # another symptom in between ("my bum aches and my foot is numb")
        if not all(doc[i].lower_ in LINKING for i in gap):
            # "pain in my buttock and tingling down to my toes": the toes are the tingling's part.
            follows = [ps for ps, _ in others if ps >= e and sentence_of[ps] == sentence_of[s]]
            if follows and all(doc[i].lower_ in AFTER_SYMPTOM for i in range(e, min(follows))):
                return False
        return True

    @staticmethod
    def _coordinated(doc, area: Tuple[int, int], parts: List[Tuple[int, int]]) -> Set[Tuple[int, int]]:
        """The area and the parts listed with it: "my bum and (my) legs", "groin or inner thighs"."""
        group = {area} | {p for p in parts if p[0] < area[1] and area[0] < p[1]}
        changed = True
        while changed:
            changed = False
            for p in parts:
                if p in group:
                    continue
                for g in list(group):
                    between = range(g[1], p[0]) if g[1] <= p[0] else range(p[1], g[0])
                    words = [doc[i].lower_ for i in between]
                    if not words or any(w in ("and", "or", "&", "+", "n") for w in words) and all(
                            w in COORDINATION for w in words):
                        group.add(p)
                        changed = True
                        break
        return group

    # --- negation -------------------------------------------------------------------
    def _intact_concepts(self, m: "_Message", i: int, area_tokens: Set[int]) -> Set[str]:
        """The concepts a negated word for a working function at `i` reports ("urge", "control")."""
        concepts = {c for key in m.keys[i] for c in self.intact.get(key, ())}
        if concepts and "feel" in m.keys[i]:
            # "feel" is a function only when it is about a place: "can't feel my bum", "no feeling
            # in it"; "not feeling great" is not numbness.
            after = i + 1 if i + 1 < m.n and m.doc[i + 1].lower_ not in ("my", "the", "a") else i + 2
            if not (after < m.n and (after in area_tokens or m.doc[after].lower_ in FEEL_PLACES)):
                return set()
        return concepts

    @staticmethod
    def _symptom_follows(m: "_Message", start: int, symptom_starts: Set[int], within: int = 3) -> bool:
        """A symptom word right after a function word: "don't feel any numbness" denies the numbness."""
        for i in range(start, min(m.n, start + within + 1)):
            if m.clause_of[i] != m.clause_of[start]:
                return False
            if i in symptom_starts:
                return True
        return False

    def _negated_function(self, m: "_Message", end: int, area_tokens: Set[int],
                          symptom_starts: Set[int]) -> Optional[Tuple[int, Set[str]]]:
        """When a negation cue ending at `end` negates a working function rather than a symptom
        ("don't get the urge", "neither leg has proper feeling", "no bladder control"), the
        function word's position and the concepts it reports; None when the cue is a denial."""
        clause = m.clause_of[end - 1]
        for i in range(end, min(m.n, end + 7)):
            if m.clause_of[i] != clause:
                return None
            concepts = self._intact_concepts(m, i, area_tokens)
            if concepts:
                if self._symptom_follows(m, i + 1, symptom_starts):
                    return None  # "don't feel any numbness"
                return i, concepts
            if i in area_tokens or m.keys[i] & self.fillers:
                continue
            return None
        return None

    def _denials(self, m: "_Message", spans: Dict[str, List[Tuple[int, int]]]) -> Set[int]:
        """Tokens a negation cue denies. A cue in front of a working function instead adds the
        symptom it reports to `spans` ("no bladder control" -> control_problem)."""
        area_tokens = {i for name in self.areas for s, e in spans[name] for i in range(s, e)}
        symptom_starts = {
            s for name in self.deniable for s, e in spans[name]
            if not all(m.keys[i] & (self.intact_words | self.fillers) for i in range(s, e))
        }
        denied: Set[int] = set()
        for start, end in self._find(self.neg_before, m.keys, m.typos, m.blocked):
            function = self._negated_function(m, end, area_tokens, symptom_starts)
            if function:
                position, concepts = function
                for concept in concepts:
                    for including in self.included_in[concept]:
                        spans[including].append((start, position + 1))
                continue
            phrase_end = m.phrase_end.get(start)
            if phrase_end and not (m.keys[phrase_end - 1] & self.intact_words  # "don't feel | any numbness"
                                   and self._symptom_follows(m, phrase_end, symptom_starts)):
                continue  # part of a symptom: "can't feel", "can't stop leaking"
            for i in range(end, min(m.n, end + 8)):
                if m.clause_of[i] != m.clause_of[start] and m.clause_of[i] != -1:
                    break
                denied.add(i)
        return denied

    # --- time: resolved, past, back again ---------------------------------------------
    def _resolutions(self, m: "_Message") -> Set[int]:
        """Tokens that a resolution after them ("fine now", "went away") says are over."""
        resolved: Set[int] = set()
        doc, clause_of = m.doc, m.clause_of
        for start, end in self._find(self.neg_after, m.keys, m.typos, m.cue_block):
            clause = clause_of[start]
            if any(clause_of[i] == clause and m.keys[i] & NOT_WORDS for i in range(max(0, start - 3), start)):
                continue  # "my bladder's not fine", "hasn't been normal": not resolved at all
            if end < m.n and doc[end].lower_ in ("to", "if"):
                continue  # "ok to book?", "fine if I come Friday?": asked about the booking, not resolved
            opening = next(i for i in range(start, -1, -1) if i == 0 or clause_of[i - 1] != clause)
            if doc[opening].lower_ in ("is", "are", "was", "does", "do", "will", "would", "should") and (
                    opening + 1 < start):
                continue  # "..., is that a normal sciatica thing?": asked, not resolved
            clauses = {clause}
            opens_clause = start == 0 or clause_of[start - 1] != clause
            refers_back = any(doc[i].lower_ in RESOLVING_PRONOUNS for i in range(end) if clause_of[i] == clause) or (
                end < m.n and doc[end].lower_ in ("it", "that", "this", "them"))  # "the doctor sorted it"
            earlier = [c for c in clause_of[:start] if 0 <= c < clause]
            if refers_back:
                # "... sciatica in both legs, he's 6 now and it went after the birth":
                # "it" can point back to anything earlier in the same sentence.
                sentence_start = max([i + 1 for i in range(start) if doc[i].lower_ in ".!?\n"] + [0])
                clauses.update(c for c in clause_of[sentence_start:start] if c >= 0)
            elif opens_clause and earlier:
                # "numb for a bit, fine now": the previous clause resolved.
                clauses.add(max(earlier))
            resolved.update(i for i in range(start) if clause_of[i] in clauses)
        return resolved

    def _past_clauses(self, m: "_Message") -> Set[int]:
        past = {
            m.clause_of[s] for s, _ in self._find(self.past, m.keys, m.typos, m.cue_block)
            if not (s > 0 and m.doc[s - 1].lower_ in ("since", "from"))  # "since last year" is still going on
        }
        for i, token in enumerate(m.doc):
            if PAST_YEAR.match(token.text) and i > 0 and m.doc[i - 1].lower_ in ("in", "back"):
                past.add(m.clause_of[i])
        return past

    def _over_clauses(self, m: "_Message") -> Set[int]:
        """Clauses told in the past tense in a message that says the episode is over ("wet the bed once
        after a big night out, never again"; "her sciatica went into both legs, she had surgery and is
        great now"), and the clauses that say so. Only called when nothing in the message is current."""
        cues = [s for s, _ in self._find(self.over, m.keys, m.typos, m.cue_block)
                if not any(m.keys[i] & NOT_WORDS for i in range(max(0, s - 2), s))]  # "not fully healed"
        if not cues:
            return set()
        over = {m.clause_of[s] for s in cues}
        over |= {m.clause_of[i] for i, token in enumerate(m.doc) if self._past_tense(token) or (
            token.lower_ == "once" and i > 0 and m.clause_of[i - 1] == m.clause_of[i])}  # "spread to both legs once"
        return over - {-1}

    def _revived(self, m: "_Message", spans: Dict[str, List[Tuple[int, int]]], past_clauses: Set[int],
                 over: Set[int]) -> Set[str]:
        """Concepts whose past or resolved mentions count again because the message says they are
        back: "had bladder issues in 2019, sorted, but I'm leaking again" (all of them), "both legs
        in 2018, now it's just my right leg again" (only what that clause names)."""
        revived: Set[str] = set()
        for start, _ in self._find(self.recurrence, m.keys, m.typos, m.blocked):
            clause = m.clause_of[start]
            if clause in past_clauses or start in over:
                continue
            named = {name for name, concept_spans in spans.items()
                     for s, _ in concept_spans if m.clause_of[s] == clause}
            revived |= named if self.attach and self.attach["parts"] in named else set(spans)
        return revived - self.once

    # --- hypotheticals and questions about the signs --------------------------------------
    def _hypothetical(self, m: "_Message", question_sentences: Set[int], told: Set[int]) -> Set[int]:
        """Tokens inside a condition ("what if my groin went numb?"), talk about signs in general
        ("my physio told me to watch for ...") or a question about causes ("can sciatica make me
        incontinent?")."""
        doc, keys, n = m.doc, m.keys, m.n
        hypothetical: Set[int] = set()
        for start, end in self._find(self.conditional, keys, m.typos, m.blocked):
            if start > 0 and keys[start - 1] & KNOWING and any(
                    keys[i] & NOT_WORDS for i in range(max(0, start - 4), start - 1)):
                continue  # "I never know if I've peed": not knowing is the symptom, not a condition
            if doc[start].lower_ == "if" and self._states_a_fact(doc, end):
                continue  # "is it ok to book if I've got a fever?": the visitor has one
            # "if my legs go numb, who do I call?": up to the end of the clause or the question.
            for i in range(end, n):
                word = doc[i].lower_
                following = doc[i + 1].lower_ if i + 1 < n else ""
                if word in CLAUSE_BREAK_PUNCT or doc[i].is_space or (
                        word in CLAUSE_BREAK_WORDS and word not in ("and", "plus", "also")) or (
                        i > end and (word in WH_WORDS or word in QUESTION_STARTS and following in ASKED_ABOUT)):
                    break
                hypothetical.add(i)
        hypothetical |= told
        for i, token in enumerate(doc):
            # "what saddle numbness means", "what does foot drop mean?": asking for a definition.
            if token.lower_ in DEFINITION_WORDS:
                what = [j for j in range(max(0, i - 8), i) if doc[j].lower_ == "what"
                        and m.sentence_of[j] == m.sentence_of[i]]
                if what:
                    hypothetical.update(range(what[-1] + 1, i))
        for i, token in enumerate(doc):
            # "could sciatica make me incontinent?", "does it ever cause bladder problems?"
            if m.sentence_of[i] in question_sentences and token.lower_ in CAUSE_VERBS:
                for j in range(i + 1, n):
                    if m.sentence_of[j] != m.sentence_of[i] or doc[j].lower_ in CAUSE_SCOPE_END:
                        break
                    hypothetical.add(j)
        return hypothetical

    def _told_about(self, m: "_Message") -> Set[int]:
        """Tokens after talk about signs in general ("my physio told me to watch for ...", "in the film
        a man lost ..."): to the end of the sentence, or until the visitor speaks of themselves
        ("watch for numbness, and now my groin is numb")."""
        doc, n = m.doc, m.n
        told: Set[int] = set()
        for start, end in self._find(self.topic, m.keys, m.typos, m.blocked):
            for i in range(end, n):
                if m.sentence_of[i] != m.sentence_of[start] or doc[i].lower_ in ("but", "though", "although"):
                    break
                if m.clause_of[i] == -1 and any(doc[j].lower_ in FIRST_PERSON for j in range(i + 1, min(n, i + 3))):
                    break
                told.add(i)
        return told

    # --- another person ---------------------------------------------------------------
    def _other_person_now(self, m: "_Message", owners: List[Optional[str]], past_clauses: Set[int],
                          anchors: List[int]) -> bool:
        """Does the message speak of another person now ("my dad can't feel his legs", "she's here
        with me", "can he still have a massage?", "my mum, 82: numb legs")? Only a story told in the
        past ("my friend had cauda equina", "my mum's legs went numb") is not about now."""
        doc, clause_of, n = m.doc, m.clause_of, m.n
        question_clauses = {
            clause_of[i] for i in range(n)
            if (i == 0 or clause_of[i - 1] == -1) and clause_of[i] != -1 and doc[i].lower_ in QUESTION_STARTS
        }
        for i in range(n):
            if clause_of[i] in past_clauses:
                continue
            word = doc[i].lower_
            if clause_of[i] in question_clauses:
                # "..., can he still have a massage?" / "what should we do?": asking for them now
                if word in OTHER_PRONOUNS | {"we", "us"} or (
                        m.keys[i] & self.others and i > 0 and doc[i - 1].lower_ in ("my", "our")):
                    return True
            elif owners[i] == "other" and (
                    word in PRESENT_VERBS or (word == "'s" and doc[i - 1].lower_ in ("he", "she"))) and not (
                    i + 1 < n and doc[i + 1].lower_ in FIRST_PERSON):  # "..., anyway can i book?"
                return True
        if any(owners[s] == "other" for s in anchors):
            return True
        return not any(
            owners[i] == "other" and clause_of[i] not in question_clauses and self._past_tense(doc[i])
            for i in range(n)
        )

    @staticmethod
    def _past_tense(token) -> bool:
        word = token.lower_
        return word in PAST_FORMS or (word.endswith("ed") and token.lemma_.lower() != word)

    # --- everyday causes -----------------------------------------------------------------
    def _explained(self, m: "_Message", spans: Dict[str, List[Tuple[int, int]]]) -> Set[Tuple[int, int]]:
        """Mentions whose everyday cause is named in the same sentence ("legs dead after leg day")."""
        explained: Set[Tuple[int, int]] = set()
        for entry in self.everyday:
            symptom_spans = self._find(entry["symptoms"], m.keys, m.typos, m.blocked)
            if not symptom_spans:
                continue
            cause_sentences = {
                m.sentence_of[s] for s, _ in self._find(entry["causes"], m.keys, m.typos, m.blocked)
                if not self._in_simile(m.doc, m.clause_of, s)  # "numb, like I've been sat on it for hours"
            }
            area_sentences = {m.sentence_of[s] for s, _ in self._find(entry["areas"], m.keys, m.typos, m.blocked)}
            # "bum numb from sitting? no, it's been numb for 3 days": a lasting sign is no everyday thing.
            unless_from = min([m.sentence_of[s] for s, _ in self._find(entry["unless"], m.keys, m.typos, m.blocked)],
                              default=m.n + 1)
            for concept_spans in spans.values():
                for s, e in concept_spans:
                    sentence = m.sentence_of[s]
                    if (sentence in cause_sentences and sentence < unless_from
                            and (not entry["areas"] or sentence in area_sentences)
                            and any(s <= a and b <= e or a <= s and e <= b for a, b in symptom_spans)):
                        explained.add((s, e))
        return explained

    # --- the message ---------------------------------------------------------------------
    def detect(self, text: str, doc=None) -> Detection:
        doc = doc if doc is not None else self.nlp(text.lower())
        m = _Message(doc=doc, keys=[_keys(t) for t in doc], typos=[self._typo_candidates(t) for t in doc],
                     clause_of=self._clauses(doc), sentence_of=self._sentences(doc))
        for start, end in self._find(self.ignore, m.keys, m.typos, set()):
            m.blocked.update(range(start, end))
        spans: Dict[str, List[Tuple[int, int]]] = {
            name: self._find(phrases, m.keys, m.typos, m.blocked) for name, phrases in self.concepts.items()
        }
        for concept_spans in spans.values():
            for s, e in concept_spans:
                if e - s > 1:  # a negation inside a phrase ("can't feel", "can't find") negates no concept
                    for i in range(s, e):
                        m.phrase_end[i] = max(m.phrase_end.get(i, e), e)
        for phrase, following in self.not_followed_by:  # "need to go | to work", "can't | find"
            next_words = {start for start, _ in self._find(following, m.keys, m.typos, m.blocked)}
            other_meaning = [(s, e) for s, e in self._find(phrase, m.keys, m.typos, m.blocked) if e in next_words]
            for name in spans:
                spans[name] = [(s, e) for s, e in spans[name]
                               if not any(os <= s and e <= oe for os, oe in other_meaning)]
        concept_starts = {s for concept_spans in spans.values() for s, _ in concept_spans}
        m.cue_block = m.blocked | set(m.phrase_end) | {i for i, t in enumerate(doc) if t.lower_ in AFRAID}

        denied = self._denials(m, spans)
        resolved = self._resolutions(m)
        past_clauses = self._past_clauses(m)
        revived = self._revived(m, spans, past_clauses, denied | resolved)
        almost: Set[int] = set()  # "nearly fell": did not happen
        for start, end in self._find(self.almost, m.keys, m.typos, m.blocked):
            almost.update(range(end, min(m.n, end + 3)))

        question_sentences = {
            m.sentence_of[i] for i in range(m.n)
            if (i == 0 or m.sentence_of[i] != m.sentence_of[i - 1])
            and self._opening(doc, i, m.sentence_of) in QUESTION_STARTS
        }
        told = self._told_about(m)
        hypothetical = self._hypothetical(m, question_sentences, told)
        anchors = [
            s for s in [s for s, _ in self._find(self.current, m.keys, m.typos, m.blocked)] + self._durations(doc)
            if m.clause_of[s] not in past_clauses and s not in denied and s not in resolved
            and s not in told  # "in the film last night a man lost ...": the film's time, not the visitor's
        ]
        happening = bool(anchors)  # "what does it mean if I can't feel my bum? it started today"
        over_clauses = set() if happening else self._over_clauses(m)
        past_clauses |= over_clauses
        owners = self._owners(doc, m.keys, m.sentence_of, concept_starts)
        has_first_person = "self" in owners
        other_now = self._other_person_now(m, owners, past_clauses, anchors)
        explained = self._explained(m, spans)
        parts = spans[self.attach["parts"]] if self.attach else []
        symptom_words = spans[self.attach["symptoms"]] if self.attach else []

        def state(concept: str, start: int, end: int, past_ok: bool) -> Optional[str]:
            """None when the mention reports a sign now, "hypothetical" when it asks about one,
            "denied" when it is denied, over, someone else's story or has an everyday cause."""
            tokens = range(start, end)
            if any(i in denied for i in tokens) or (start, end) in explained:
                return "denied"
            if concept in self.almost_concepts and start in almost:
                return "denied"
            if concept not in revived and concept not in self.history and (any(i in resolved for i in tokens)
                                or m.clause_of[start] in over_clauses
                                or not past_ok and m.clause_of[start] in past_clauses):
                return "denied"
            owner = owners[end - 1]
            if owner in ("animal", "work") or (owner == "other" and not other_now):
                return "denied"
            if happening:
                return None
            if owner == "generic" or any(i in hypothetical for i in tokens):
                return "hypothetical"
            if owner is None and (m.sentence_of[start] in question_sentences or 0 in question_sentences) \
                    and not has_first_person:
                return "hypothetical"  # "can sciatica affect both legs?": about nobody in particular
            return None

        def live(concept: str, past_ok: bool, allowed: Set[Optional[str]]) -> List[Tuple[int, int]]:
            return [(s, e) for s, e in spans[concept] if state(concept, s, e, past_ok) in allowed]

        def holds(condition, past_ok: bool, allowed) -> bool:
            if isinstance(condition, dict) and "said_of" in condition:  # {said_of: [numb, saddle_area]}
                symptom, area = condition["said_of"]
                return any(
                    self._attached(doc, m.sentence_of, symptom_span, area_span, parts, symptom_words)
                    for symptom_span in live(symptom, past_ok, allowed)
                    for area_span in live(area, past_ok, allowed)
                )
            if isinstance(condition, dict):  # {near: [a, b], within: N}: a and b close together
                first, second = condition["near"]
                within = int(condition.get("within", 4))
                # ... and in one sentence: "...down my right leg. Each time it settles" is not "each leg".
                return any(
                    (abs(s1 - s2) <= within or abs(e1 - s2) <= within or abs(e2 - s1) <= within)
                    and m.sentence_of[s1] == m.sentence_of[s2]
                    for s1, e1 in live(first, past_ok, allowed)
                    for s2, e2 in live(second, past_ok, allowed)
                )
            return bool(live(condition, past_ok, allowed))

        def signs_found(allowed) -> List[dict]:
            found = []
            for sign in self.signs:
                groups = sign.get("any_of") or [sign["all"]]
                past_ok = bool(sign.get("past_ok"))
                if any(all(holds(c, past_ok, allowed) for c in group) for group in groups):
                    found.append(sign)
            return found

        signs = signs_found({None})
        if not signs:
            asked = signs_found({None, "hypothetical"})
            if asked:
                # "what if my groin went numb?" / "what is cauda equina?": information, not a report.
                return Detection(is_question=True, signs=[s["name"] for s in asked])
            return Detection(hinted=any(live(h, True, {None}) for h in self.hints),
                             cleared=bool(signs_found({None, "hypothetical", "denied"})))
        tier = min((s["tier"] for s in signs), key=TIERS.index)
        if tier == "see_doctor" and question_sentences >= set(m.sentence_of):
            # "will massage make my sciatica worse?" is a question for the FAQ answers (but "what's your
            # cancellation policy? I've had sciatica for over a month" reports it);
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
