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
- On the channels where the caller is the visitor (REST, the widget's socket.io), a
  sender id is whatever the caller says, so a flood can name a new conversation per
  message: each client address may also send RATE_LIMIT_PER_ADDRESS messages a minute
  (default RATE_PER_ADDRESS), with the same reply beyond that. Behind a reverse proxy
  the address is taken from X-Forwarded-For, but only when the request comes from one
  of TRUSTED_PROXIES (addresses or networks; none by default: anyone can send that header).
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
import ipaddress
import logging
import os
import time
import unicodedata
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Hashable, List, Mapping, Optional, Sequence, Union

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
# Messages a minute from one client address, whatever conversations they name. 30 visitors
# behind one address (a clinic's office, a waiting room's Wi-Fi, a mobile carrier's shared
# address) each typing every 15 seconds stay under it; a flood from one address gets at most
# this many messages a minute processed, about 7% of what one 2-core server answers (~29 a second).
RATE_PER_ADDRESS = 120
# The channels whose callers are the visitors themselves. The messaging channels' requests come
# from the provider's servers (one address for all its users) and name senders the provider's
# signature vouches for, so they are limited per conversation only.
VISITOR_CHANNELS = frozenset({"rest", "socketio"})

TOO_LONG = ("That message is longer than I can read ({length:,} characters). Please send your question "
            "in a shorter message (up to {limit:,} characters).")
EMPTY = "I didn't get any words there. What would you like to know about sciatica or booking a massage?"
TOO_FAST = ("You're sending messages faster than I can answer. Please wait a minute, then send your "
            "question again.")

Handler = Callable[[UserMessage], Awaitable[Any]]

# The tracker-store errors met while handling the current message (see _record_store_error).
_store_errors: contextvars.ContextVar[Optional[List[Exception]]] = contextvars.ContextVar(
    "clinic_tracker_store_errors", default=None)
# The address of the client whose request is being handled (set_client_address), if the channel knows it.
_client_address: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("clinic_client_address",
                                                                               default=None)

Network = Union[ipaddress.IPv4Network, ipaddress.IPv6Network]


def set_client_address(address: Optional[str]) -> contextvars.Token:
    """Messages handled from here on in this task (and tasks it starts) come from this address
    (None: unknown, no per-address limit); reset_client_address(token) undoes it."""
    return _client_address.set(address)


def reset_client_address(token: contextvars.Token) -> None:
    _client_address.reset(token)


def parse_trusted_proxies(value: str) -> List[Network]:
    """TRUSTED_PROXIES: addresses or networks (CIDR), separated by spaces or commas."""
    networks = []
    for item in value.replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"TRUSTED_PROXIES: {item!r} is not an IP address or network (e.g. 10.0.0.5 "
                             "or 172.16.0.0/12)") from None
    return networks


def _is_one_of(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(peer: str, forwarded_for: Optional[str], trusted_proxies: Sequence[Network]) -> str:
    """The visitor's address: the peer's, or, when the peer is a trusted proxy, the last address in
    X-Forwarded-For that is not a trusted proxy (each proxy appends the address it was called from;
    what comes before that is the client's own say)."""
    hops = [peer] + [hop.strip() for hop in reversed((forwarded_for or "").split(",")) if hop.strip()]
    for hop in hops:
        if not _is_one_of(hop, trusted_proxies):
            return hop
    return hops[-1]


def address_key(address: str) -> str:
    """What the per-address limit counts by: an IPv6 host usually has a whole /64 to pick addresses
    from, so IPv6 counts by its /64; IPv4 (also written as IPv6-mapped) by the address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def limits_from_environment(environment: Mapping[str, str]):
    """(the per-address limit or None when RATE_LIMIT_PER_ADDRESS=0, the trusted proxies)."""
    value = environment.get("RATE_LIMIT_PER_ADDRESS", "").strip() or str(RATE_PER_ADDRESS)
    if not value.isdigit():
        raise ValueError(f"RATE_LIMIT_PER_ADDRESS: {value!r} should be a number of messages a minute "
                         f"(default {RATE_PER_ADDRESS}; 0 turns the limit off)")
    per_address = RateLimit(messages=int(value), seconds=60.0) if int(value) else None
    return per_address, parse_trusted_proxies(environment.get("TRUSTED_PROXIES", ""))


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
    """A token bucket per key (a conversation, a client address): `messages` at once, refilled over `seconds`."""

    def __init__(self, messages: int = RATE_MESSAGES, seconds: float = RATE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, memory: int = RATE_MEMORY):
        self.capacity, self.refill = float(messages), messages / seconds
        self.clock, self.memory = clock, memory
        self.messages, self.seconds = messages, seconds
        self._buckets: "OrderedDict[Hashable, tuple]" = OrderedDict()

    def allow(self, key: Hashable) -> bool:
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
    def __init__(self, rate_limit: Optional[RateLimit] = None, max_chars: int = MAX_MESSAGE_CHARS,
                 address_limit: Optional[RateLimit] = None, trusted_proxies: Sequence[Network] = ()):
        self.rate_limit = rate_limit or RateLimit()
        self.address_limit = address_limit
        self.trusted_proxies = list(trusted_proxies)
        self.max_chars = max_chars
        self._throttled: set = set()

    @classmethod
    def from_environment(cls, environment: Mapping[str, str] = os.environ) -> "VisitorGuard":
        address_limit, trusted_proxies = limits_from_environment(environment)
        return cls(address_limit=address_limit, trusted_proxies=trusted_proxies)

    def client_address(self, request: Any) -> str:
        """The visitor's address for a Sanic request (its peer, or X-Forwarded-For from a trusted proxy)."""
        return client_address(request.ip, request.headers.get("X-Forwarded-For"), self.trusted_proxies)

    async def _reply(self, message: UserMessage, text: str) -> None:
        if message.output_channel is not None:
            await message.output_channel.send_text_message(message.sender_id, text)

    def _refused(self, limit: RateLimit, key: Hashable, what: str) -> bool:
        """True (and one log line per flood, not one per message) when `key` is over `limit`."""
        if limit.allow(key):
            self._throttled.discard(key)
            return False
        if key not in self._throttled:
            if len(self._throttled) >= RATE_MEMORY:
                self._throttled.clear()
            self._throttled.add(key)
            logger.warning("Rate limit: refusing messages %s (over %d per %d s)", what, limit.messages, limit.seconds)
        return True

    def wrap(self, on_new_message: Handler) -> Handler:
        async def guarded(message: UserMessage) -> Any:
            tag = conversation_tag(message.sender_id)
            key = (str(message.input_channel), str(message.sender_id))
            address = _client_address.get()
            # The conversation's limit first: one sender's flood is refused there and does not use
            # up the allowance of the other visitors behind the same address.
            if self._refused(self.rate_limit, key, f"in conversation {tag}") or (
                    address is not None and self.address_limit is not None
                    and self._refused(self.address_limit, ("address", address_key(address)),
                                      f"from client address {address_key(address)}")):
                return await self._reply(message, TOO_FAST)
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


guard = VisitorGuard.from_environment()


class GuardedChannel:
    """Mix in before a Rasa input channel: its messages go through the guard (and, on the
    channels whose callers are visitors, the guard knows each request's client address)."""

    def blueprint(self, on_new_message: Handler):
        blueprint = super().blueprint(guard.wrap(on_new_message))  # type: ignore[misc]
        if self.name() in VISITOR_CHANNELS:  # type: ignore[attr-defined]
            @blueprint.middleware("request")
            async def remember_client_address(request) -> None:
                # Sanic runs the handler in the same task, so the guard reads it from there.
                set_client_address(guard.client_address(request))

        return blueprint


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
