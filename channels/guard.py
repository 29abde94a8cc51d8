"""What every public channel does with a visitor's message before the assistant sees it.

The website widget, the REST webhook and the messaging connectors all hand their
messages to Rasa through `VisitorGuard.wrap(on_new_message)` (GuardedChannel below):

- Control characters are removed (a NUL byte would break a PostgreSQL tracker store).
- An empty message, or one longer than MAX_MESSAGE_CHARS, gets a short reply saying
  why, and is not processed or stored.
- Rasa reads a message starting with "/" as an intent with slot values
  (`/book_massage{"name": ...}`), which would let anyone set slots or jump into the
  booking form's last step. No button of ours sends that syntax (button payloads are
  plain sentences), so a visitor's "/..." is read as the words after the slash;
  only the widget's opening "/greet" (no values) is kept as it is.
- Each conversation may send RATE_MESSAGES messages per RATE_SECONDS; beyond that it
  gets a polite "slow down" and the message is not processed, so a flood from one
  sender cannot starve other visitors of the server's time.
- If handling the message fails, or the tracker store cannot save or read the
  conversation (a full disk, an unwritable database: Rasa would otherwise carry on
  in memory and say nothing), the log says so plainly and the visitor is told how to
  reach the clinic.

Logs name a conversation by a short hash of its id, never by the id itself (on
SMS/WhatsApp the id is the visitor's phone number) and never quote the message.
"""
from __future__ import annotations

import contextvars
import hashlib
import logging
import time
import unicodedata
from collections import OrderedDict
from typing import Any, Awaitable, Callable, List, Optional, Tuple

from rasa.core.channels.channel import UserMessage
from rasa.core.tracker_store import FailSafeTrackerStore

logger = logging.getLogger(__name__)

MAX_MESSAGE_CHARS = 2000
# Payloads our own clients send in Rasa's syntax, kept as they are: the widget opens a
# new conversation with "/greet" (an intent with no values). Anything else starting
# with "/" is read as words.
CLIENT_PAYLOADS = frozenset({"/greet"})
RATE_MESSAGES = 20
RATE_SECONDS = 60.0
# Conversations whose message rate is remembered (the least recently seen are forgotten).
RATE_MEMORY = 50_000

TOO_LONG = ("That message is longer than I can read ({length:,} characters). Please send your question "
            "in a shorter message (up to {limit:,} characters).")
EMPTY = "I didn't get any words there. What would you like to know about sciatica or booking a massage?"
TOO_FAST = ("You're sending messages faster than I can answer. Please wait a minute, then send your "
            "question again.")

Handler = Callable[[UserMessage], Awaitable[Any]]

# The tracker-store errors met while handling the current message (see _record_store_error).
_store_errors: contextvars.ContextVar[Optional[List[Exception]]] = contextvars.ContextVar(
    "clinic_tracker_store_errors", default=None)


def conversation_tag(sender_id: Any) -> str:
    """How logs name a conversation: a short hash, not the id (which may be a phone number)."""
    return hashlib.sha256(str(sender_id).encode("utf-8", "surrogatepass")).hexdigest()[:10]


def clean_text(text: Any) -> str:
    """The message without control characters (new lines and tabs kept) or lone surrogates."""
    if text is None:
        return ""
    text = str(text).encode("utf-8", "replace").decode("utf-8")
    return "".join(ch for ch in text if ch in "\n\t" or unicodedata.category(ch) != "Cc")


def without_payload_syntax(text: str) -> str:
    """A visitor's "/intent{...}" becomes the words 'intent{...}', read like any other sentence.
    (Rasa strips the text before checking for "/", so leading spaces are taken off too.)"""
    text = text.strip()
    if text in CLIENT_PAYLOADS:
        return text
    while text.startswith("/"):
        text = text[1:].strip()
    return text


class RateLimit:
    """A token bucket per conversation: RATE_MESSAGES at once, refilled over RATE_SECONDS."""

    def __init__(self, messages: int = RATE_MESSAGES, seconds: float = RATE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, memory: int = RATE_MEMORY):
        self.capacity, self.refill = float(messages), messages / seconds
        self.clock, self.memory = clock, memory
        self._buckets: "OrderedDict[Tuple[str, str], Tuple[float, float]]" = OrderedDict()

    def allow(self, key: Tuple[str, str]) -> bool:
        now = self.clock()
        tokens, then = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - then) * self.refill)
        allowed = tokens >= 1
        self._buckets[key] = (tokens - 1 if allowed else tokens, now)
        while len(self._buckets) > self.memory:
            self._buckets.popitem(last=False)
        return allowed


def apology() -> str:
    from components.action_server_down import apology as clinic_apology

    return clinic_apology()


class VisitorGuard:
    def __init__(self, rate_limit: Optional[RateLimit] = None, max_chars: int = MAX_MESSAGE_CHARS):
        self.rate_limit = rate_limit or RateLimit()
        self.max_chars = max_chars
        self._throttled: set = set()

    async def _reply(self, message: UserMessage, text: str) -> None:
        if message.output_channel is not None:
            await message.output_channel.send_text_message(message.sender_id, text)

    def wrap(self, on_new_message: Handler) -> Handler:
        async def guarded(message: UserMessage) -> Any:
            tag = conversation_tag(message.sender_id)
            key = (str(message.input_channel), str(message.sender_id))
            if not self.rate_limit.allow(key):
                if key not in self._throttled:  # one log line per flood, not one per message
                    if len(self._throttled) >= RATE_MEMORY:
                        self._throttled.clear()
                    self._throttled.add(key)
                    logger.warning("Rate limit: refusing messages in conversation %s (over %d per %d s)",
                                   tag, RATE_MESSAGES, RATE_SECONDS)
                return await self._reply(message, TOO_FAST)
            self._throttled.discard(key)
            text = without_payload_syntax(clean_text(message.text))
            if not text:
                return await self._reply(message, EMPTY)
            if len(text) > self.max_chars:
                logger.info("Refused a message of %d characters in conversation %s", len(text), tag)
                return await self._reply(message, TOO_LONG.format(length=len(text), limit=self.max_chars))
            message.text = text

            errors: List[Exception] = []
            token = _store_errors.set(errors)
            try:
                result = await on_new_message(message)
            except Exception as error:  # the visitor hears something; the log has the reason
                logger.error("Handling a message in conversation %s failed (%s); the visitor was given the "
                             "clinic's contacts.", tag, describe_error(error))
                await self._reply(message, apology())
                return None
            finally:
                try:
                    _store_errors.reset(token)
                except ValueError:  # a task cancelled at shut-down finishes in another context
                    pass
            if errors:
                logger.error("TRACKER STORE FAILED for conversation %s: %s. This message was answered from memory "
                             "and is NOT saved; fix the database (disk space, permissions, connection). The "
                             "visitor was told and given the clinic's contacts.", tag,
                             "; ".join(describe_error(e) for e in errors))
                await self._reply(message, "I couldn't save our conversation just now, so I may not remember it. "
                                  + apology())
            return result

        return guarded


guard = VisitorGuard()


class GuardedChannel:
    """Mix in before a Rasa input channel: its messages go through the guard."""

    def blueprint(self, on_new_message: Handler):
        return super().blueprint(guard.wrap(on_new_message))  # type: ignore[misc]


def describe_error(error: Exception) -> str:
    """The database's own words ("database or disk is full"), without SQLAlchemy's copy of
    the statement and its parameters, which hold the visitor's messages."""
    cause = getattr(error, "orig", None) or error
    return f"{type(cause).__name__}: {cause}"


# Rasa wraps the tracker store in FailSafeTrackerStore, which on an error logs it (with the
# SQL parameters: the visitor's words) and carries on with an in-memory copy. Here the log
# line leaves the parameters out, and the guard learns of it to tell the visitor.
def _record_store_error(doing: str):
    def record(self, error: Exception) -> None:
        errors = _store_errors.get()
        if errors is not None:
            errors.append(error)
        logger.error("Tracker store error while %s a conversation (%s); Rasa continues with an in-memory copy "
                     "that a restart loses.", doing, describe_error(error))

    return record


FailSafeTrackerStore.on_tracker_store_error = _record_store_error("saving")
FailSafeTrackerStore.on_tracker_store_retrieve_error = _record_store_error("reading")
