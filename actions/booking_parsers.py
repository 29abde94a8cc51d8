"""Reading the booking form's answers out of what visitors actually type.

Pure functions, no Rasa: each takes the visitor's text and returns the value
understood, or None when the text does not hold one (the form then re-asks
with an example). tests/booking/parser_cases.yml holds the cases they meet.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Dict, Iterable, List, Optional, Tuple

# --- yes / no -------------------------------------------------------------------------

_YES = re.compile(
    r"^\W*(y|ya|yes+|yeah|yep|yup|yea|sure|ok(ay)?|correct|right|of course|definitely|absolutely|"
    r"i do|i have|i am|i'm|that's right|affirmative|please do|go ahead|send it|sounds good|fine)\b", re.I)
_NO = re.compile(
    r"^\W*(n|no+|nope|nah|none|not really|never|negative|neither|nothing|i don'?t|i do not|i haven'?t|"
    r"i have not|i'?m not|i am not|don'?t|do not|nada|no way|not at all|not that i know)\b", re.I)


def parse_yes_no(text: str) -> Optional[bool]:
    """True for a yes, False for a no, None when it is neither (or both)."""
    cleaned = text.strip().lower().replace("\u2019", "'")
    yes, no = bool(_YES.search(cleaned)), bool(_NO.search(cleaned))
    if yes == no:
        return None
    return yes


# --- technique and length -------------------------------------------------------------

# The techniques the clinic's articles describe; value -> how visitors write it.
TECHNIQUES: Dict[str, Tuple[str, ...]] = {
    "swedish": ("swedish", "swedish massage", "relaxation massage", "sweedish", "swidish"),
    "deep tissue": ("deep tissue", "deep-tissue", "deeptissue", "deep tisue", "deep tissues", "deep pressure"),
    "trigger point": ("trigger point", "trigger-point", "trigger points", "triggerpoint", "trigger"),
    "myofascial release": ("myofascial", "myofascial release", "myo fascial", "myofacial", "fascia"),
    "hot stone": ("hot stone", "hot stones", "hot-stone", "hotstone", "warm stone", "stone massage", "hot rock"),
    "stretching": ("stretching", "stretch", "stretches", "assisted stretching"),
}
NOT_SURE = "not sure"
_NOT_SURE = re.compile(
    r"\b(not sure|unsure|no idea|don'?t know|dunno|idk|no preference|any(thing)?( is fine| works)?|"
    r"whatever|you (choose|decide|pick)|the therapist can (advise|decide|choose)|therapist'?s? (choice|advice)|"
    r"recommend|suggest|advise me|help me choose|surprise me)\b", re.I)


def parse_technique(text: str) -> Optional[str]:
    """A technique named in the text, NOT_SURE for 'you decide', else None."""
    lowered = " " + re.sub(r"[^a-z ]+", " ", text.lower()) + " "
    lowered = re.sub(r"\s+", " ", lowered)
    for value, spellings in TECHNIQUES.items():
        if any(f" {s.replace('-', ' ')} " in lowered for s in spellings):
            return value
    if _NOT_SURE.search(text):
        return NOT_SURE
    return None


_WORD_NUMBERS = {"one": 60, "an": 60, "a": 60, "two": 120}


def parse_length(text: str, offered: Iterable[int]) -> Optional[int]:
    """Minutes asked for (one of `offered`), 0 for 'not sure', None otherwise."""
    lowered = text.lower()
    minutes: Optional[int] = None
    if re.search(r"\b(hour and a half|1\.5 ?h|one and a half|90)\b", lowered):
        minutes = 90
    elif m := re.search(r"\b(\d{2,3})\s*(m|min|mins|minutes?)?\b", lowered):
        minutes = int(m.group(1))
    elif re.search(r"\bhalf (an )?hour\b", lowered):
        minutes = 30
    elif m := re.search(r"\b(\d(?:\.\d)?|an|a|one|two)\s*(h|hr|hrs|hours?)\b", lowered):
        word = m.group(1)
        minutes = _WORD_NUMBERS.get(word) or int(float(word) * 60)
    if minutes is not None:
        return minutes if minutes in set(offered) else None
    if _NOT_SURE.search(text):
        return 0
    return None


# --- contact ------------------------------------------------------------------------

_EMAIL = re.compile(r"(?<![\w.+-])([\w.+-]+)@([A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,})(?![\w@-])")
_PHONE_RUN = re.compile(r"\+?\(?\d[\d\s().-]{5,}\d(?![\w@])|\+?\d{7,}")


def parse_contact(text: str) -> Optional[Dict[str, str]]:
    """{'email': ..., 'phone': ...} with what the text holds (E.164 phone), or None."""
    found: Dict[str, str] = {}
    email = _EMAIL.search(text)
    rest = text
    if email:
        found["email"] = f"{email.group(1)}@{email.group(2).lower()}"
        rest = text[: email.start()] + " " + text[email.end():]
    for run in _PHONE_RUN.finditer(rest):
        candidate = run.group(0)
        # Letters straight after the digits ("305-555-CALL") mean it is not a number we can dial.
        tail = rest[run.end(): run.end() + 1]
        if tail.isalpha():
            continue
        digits = re.sub(r"\D", "", candidate)
        if candidate.strip().startswith("+"):
            if 8 <= len(digits) <= 15:
                found["phone"] = "+" + digits
                break
        elif len(digits) == 10:
            found["phone"] = "+1" + digits
            break
        elif len(digits) == 11 and digits.startswith("1"):
            found["phone"] = "+" + digits
            break
    return found or None


# --- name ---------------------------------------------------------------------------

_NAME_LEAD_IN = re.compile(
    r"^\s*((hi|hello|hey|sorry|oops|actually|ok|okay|um+|uh+|well|sure|yes)\b[\s,!.]*)?"
    r"((my name is|my name's|name's|name is|name:|i'm|i am|im|it's|its|this is|call me)\s+)?",
    re.I)
_NAME_WORD = re.compile(r"^[^\W\d_]+(?:['\u2019.-][^\W\d_]*)*\.?$", re.UNICODE)
_NOT_A_NAME = {
    "no", "yes", "ok", "okay", "idk", "skip", "none", "nothing", "why", "test", "testing", "asdf", "n/a", "na",
    "not telling", "i don't know", "i dont know", "dunno", "nope", "yeah", "sure", "hi", "hello", "hey",
    "anonymous", "nobody", "thanks", "thank you", "what", "huh", "cancel", "stop",
}
_NOT_IN_NAMES = {
    "book", "booking", "massage", "appointment", "sciatica", "pain", "want", "please", "help", "what", "how",
    "why", "when", "where", "can", "could", "would", "should", "session", "back", "leg", "doctor", "price",
    "cost", "open", "hours", "therapist", "tomorrow", "today", "morning", "afternoon", "evening", "not",
    "don't", "dont", "rather", "tell", "you", "your", "is", "are", "the", "of", "to", "i", "me", "my",
}


def parse_name(text: str) -> Optional[str]:
    """The visitor's name as typed (lead-ins like 'my name is' removed), or None."""
    name = _NAME_LEAD_IN.sub("", text.strip())
    name = re.sub(r"[\s,!?;:.]+$", "", name).strip()
    name = re.sub(r"\s+", " ", name)
    if not name or len(name) > 60 or name.lower() in _NOT_A_NAME:
        return None
    words = name.split(" ")
    if len(words) > 5 or not all(_NAME_WORD.match(w) for w in words):
        return None
    if any(w.lower().strip(".") in _NOT_IN_NAMES for w in words) and not (
            len(words) > 1 and words[0][:1].isupper() and all(w[:1].isupper() for w in words)):
        return None
    return name


# --- preferred day and time ---------------------------------------------------------

WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
_WEEKDAY_FORMS = {
    0: r"mon(day)?s?|mondy", 1: r"tue(s|sday)?s?|teusday|tuseday", 2: r"wed(s|nesday)?s?|wendsday|wensday",
    3: r"thu(r|rs|rsday)?s?|thursady|thrusday", 4: r"fri(day)?s?|firday", 5: r"sat(urday)?s?|saterday|satruday",
    6: r"sun(day)?s?|sundy",
}
MONTHS = ["january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
          "november", "december"]
_MONTH = r"(jan(uary)?|feb(ruary)?|mar(ch)?|apr(il)?|may|june?|july?|aug(ust)?|sep(t|tember)?|oct(ober)?|nov(ember)?|dec(ember)?)"
_FLEXIBLE = re.compile(
    r"\b(asap|as soon as (possible|you can)|any ?time|whenever|flexible|any day|earliest|first available|"
    r"soonest|next available)\b", re.I)
PARTS = {"morning": ("morning", "mornin", "am only", "before noon", "early"),
         "afternoon": ("afternoon", "arvo", "after lunch", "aftenoon", "afternon"),
         "evening": ("evening", "evenin", "after work", "tonight", "night", "late")}


@dataclass(frozen=True)
class PreferredTime:
    text: str
    date: Optional[date] = None
    time: Optional[time] = None
    part_of_day: Optional[str] = None
    flexible: bool = False
    past: bool = False

    def describe(self) -> str:
        """How the form reads it back: 'Saturday 21 November, morning'."""
        bits: List[str] = []
        if self.date:
            bits.append(f"{WEEKDAYS[self.date.weekday()].title()} {self.date.day} {MONTHS[self.date.month - 1].title()}")
        if self.time:
            hour = self.time.hour % 12 or 12
            minutes = f":{self.time.minute:02d}" if self.time.minute else ""
            bits.append(f"{hour}{minutes} {'am' if self.time.hour < 12 else 'pm'}")
        if self.part_of_day:
            bits.append(self.part_of_day)
        if not bits:
            return "as soon as possible" if self.flexible else self.text
        return ", ".join(bits)


def _normalise(text: str) -> str:
    lowered = text.lower().replace("\u2019", "'")
    lowered = re.sub(r"\b(tmrw|tmr|tomorow|tommorow|tommorrow|tomorrw|2morrow|2moro)\b", "tomorrow", lowered)
    return re.sub(r"\s+", " ", lowered)


def _find_weekday(text: str) -> Optional[Tuple[int, str]]:
    for index, forms in _WEEKDAY_FORMS.items():
        m = re.search(rf"\b(next|this|last|on|coming)?\s*\b({forms})\b", text)
        if m:
            # "sat" and "sun" are also English words; only trust them as days in a short answer or with a cue.
            word = m.group(2)
            if word in ("sat", "sun", "wed") and not (m.group(1) or len(text.split()) <= 4):
                continue
            return index, (m.group(1) or "")
    return None


def _month_number(word: str) -> int:
    return next(i for i, name in enumerate(MONTHS, 1) if name.startswith(word[:3]))


def _roll_forward(candidate: Optional[date], today: date, explicit_year: bool) -> Tuple[Optional[date], bool]:
    if candidate is None:
        return None, False
    if candidate < today:
        if explicit_year:
            return candidate, True
        try:
            return candidate.replace(year=candidate.year + 1), False
        except ValueError:
            return None, False
    return candidate, False


def _safe_date(year: int, month: int, day: int) -> Optional[date]:
    try:
        return date(year, month, day)
    except ValueError:
        return None


def _find_date(text: str, today: date) -> Tuple[Optional[date], bool, bool]:
    """(date, past, found) for calendar dates: 2026-11-28, 11/28, nov 28, 28th of november, the 28th."""
    if m := re.search(r"\b(20\d\d)-(\d{1,2})-(\d{1,2})\b", text):
        found = _safe_date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
        d, past = _roll_forward(found, today, explicit_year=True)
        return d, past, found is not None
    if m := re.search(r"\b(\d{1,2})/(\d{1,2})(?:/(\d{2,4}))?\b", text):
        year = m.group(3)
        y = (2000 + int(year) if len(year) == 2 else int(year)) if year else today.year
        found = _safe_date(y, int(m.group(1)), int(m.group(2)))
        d, past = _roll_forward(found, today, explicit_year=bool(year))
        return d, past, found is not None
    m = (re.search(rf"\b(?P<month>{_MONTH})\.?\s+(?:the\s+)?(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b"
                   r"(?!\s*(?:am|pm|a\.m|p\.m|:|h\b|hours?|min))", text)
         or re.search(rf"\b(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\s+(?:of\s+)?(?P<month>{_MONTH})\b", text))
    if m:
        found = _safe_date(today.year, _month_number(m.group("month")), int(m.group("day")))
        d, past = _roll_forward(found, today, explicit_year=False)
        return d, past, found is not None
    if m := re.search(r"\b(\d{1,2})(?:st|nd|rd|th)\b", text):
        day = int(m.group(1))
        found = _safe_date(today.year, today.month, day)
        if found is None or found < today:
            following = today.replace(day=1) + timedelta(days=32)
            found = _safe_date(following.year, following.month, day)
        return found, False, found is not None
    return None, False, False


def _find_time(text: str) -> Optional[time]:
    if re.search(r"\b(noon|midday|lunch ?time|lunch)\b", text):
        return time(12, 0)
    if re.search(r"\bmidnight\b", text):
        return time(0, 0)
    if m := re.search(r"\b(\d{1,2})(?::(\d{2}))?\s*([ap])\.?\s?m\b\.?", text):
        hour, minute = int(m.group(1)), int(m.group(2) or 0)
        if 1 <= hour <= 12 and minute < 60:
            hour = hour % 12 + (12 if m.group(3) == "p" else 0)
            return time(hour, minute)
    if m := re.search(r"\b([01]?\d|2[0-3])[:.h]([0-5]\d)\b", text):
        return time(_assume_afternoon(int(m.group(1))), int(m.group(2)))
    if m := re.search(r"\b(at|around|about|after|before|by|from|say)\s+(\d{1,2})\b(?!\s*(?:/|st|nd|rd|th|min|h\b|hours?|of|-\d))", text):
        hour = int(m.group(2))
        if 1 <= hour <= 12:
            return time(_assume_afternoon(hour), 0)
    if m := re.search(r"\b(\d{1,2})\s*(o'?clock|ish)\b", text):
        hour = int(m.group(1))
        if 1 <= hour <= 12:
            return time(_assume_afternoon(hour), 0)
    return None


def _assume_afternoon(hour: int) -> int:
    """A bare 1-7 means the afternoon (nobody books a massage at 3 am); 8-11 the morning."""
    return hour + 12 if 1 <= hour <= 7 else hour


def _find_part(text: str) -> Optional[str]:
    for part, words in PARTS.items():
        if any(re.search(rf"\b{re.escape(w)}\b", text) for w in words):
            return part
    return None


def parse_preferred_time(text: str, now: datetime) -> Optional[PreferredTime]:
    """What day/time the visitor would like, relative to `now` (in the clinic's time zone)."""
    t = _normalise(text)
    today = now.date()
    when: Optional[date] = None
    past = False
    found_day = False

    if re.search(r"\byesterday\b", t):
        when, past, found_day = today - timedelta(days=1), True, True
    elif re.search(r"\bday after tomorrow\b", t):
        when, found_day = today + timedelta(days=2), True
    elif re.search(r"\btomorrow\b", t):
        when, found_day = today + timedelta(days=1), True
    elif re.search(r"\b(today|tonight|this (morning|afternoon|evening)|later today)\b", t):
        when, found_day = today, True

    if not found_day:
        when, past, found_day = _find_date(t, today)
    if not found_day and (weekday := _find_weekday(t)):
        index, cue = weekday
        ahead = (index - today.weekday()) % 7
        if cue == "last":
            when, past = today - timedelta(days=(today.weekday() - index) % 7 or 7), True
        else:
            if cue == "next" and ahead == 0:
                ahead = 7
            when = today + timedelta(days=ahead)
        found_day = True
    if not found_day and re.search(r"\b(this |the )?week ?end\b", t):
        ahead = (5 - today.weekday()) % 7 if today.weekday() < 5 else 0
        when, found_day = today + timedelta(days=ahead), True
    vague_week = bool(re.search(r"\b(next|this|later this|coming) week\b", t)) and not found_day

    at = _find_time(t)
    part = _find_part(t)
    if re.search(r"\btonight\b", t):
        part = "evening"
    if at and part == "morning" and re.search(r"\bearly\b", t) and not re.search(r"\bmorning\b", t):
        part = None
    flexible = bool(_FLEXIBLE.search(t))

    if not (found_day or at or part or flexible or vague_week):
        return None
    if when == today and at and not past:
        past = datetime.combine(today, at, tzinfo=now.tzinfo) < now
    return PreferredTime(text=text.strip(), date=when, time=at, part_of_day=part, flexible=flexible, past=past)
