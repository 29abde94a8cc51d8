"""The website's channels: the widget's socket.io channel and the REST webhook,
both guarded (channels/guard.py) and strict about what they accept.

WebChatInput is Rasa's socketio channel (same name, /socket.io path and settings) with:
- conversations the server owns: `session_request` confirms the conversation the widget
  names only with a valid session token for exactly that conversation (HS256, signed with
  the channel's `session_key`, valid SESSION_SECONDS after it was issued and re-issued at
  every confirmation); otherwise it starts a new conversation with a random id. The id is
  bound to the socket, and every message on that socket goes to that conversation,
  whatever id the message names;
- each message acknowledged (the socket.io ack) once accepted, and a message id the same
  conversation sent before (a resend after a lost ack) acknowledged again but not
  processed twice (remembered in this process: RECENT_MESSAGE_IDS);
- Rasa 3.6's SocketIOOutput.send_custom_json fixed: it calls
  `sio.emit(event, **json_message)`, so a custom payload (ours: {"red_flag_tier":
  "emergency"}, which the widget shows distinctly) raised TypeError and the rest of
  the reply was lost; here it is sent as {"custom": {...}}, like the REST channel does;
- only the web pages in `cors_allowed_origins` may connect (a browser's Origin header
  is checked, for websockets too, which CORS alone does not cover);
- a message it cannot read (not an object, no session, a message that is not text)
  gets a reply saying so instead of being dropped without a word.

GuardedRestInput is Rasa's REST channel (/webhooks/rest/webhook), a developer's tool: it
needs `Authorization: Bearer <token>` (401 without it), keeps its conversations apart from
every other channel's ("rest:" + sender, so no REST caller can reach a widget, SMS or
Telegram conversation), and answers a request it cannot read with 400 (not JSON, not an
object, no "sender" or "message" text), 413 when the body is over MAX_BODY_BYTES, instead
of a 500 or an empty answer.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
import time
import uuid
from collections import OrderedDict
from typing import Any, Dict, List, Optional, Set, Text, Tuple

import jwt
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from channels.guard import GuardedChannel, conversation_tag, guard, reset_client_address, set_client_address

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_SENDER_CHARS = 200
UNREADABLE = "Sorry, I couldn't read that message. Please type your question as text and send it again."
NO_SESSION = "Sorry, I lost track of our conversation. Please reload the page and send your message again."
# A widget's session token stays valid this long after it was last issued (every reconnect
# re-issues it), so a tab left open for a day still finds its conversation.
SESSION_SECONDS = 24 * 3600
SESSION_ALGORITHM = "HS256"
# Message ids remembered per process to drop a resent message, the least recent forgotten first
# (about 6 MB): at the ~30 messages a second one server answers at most, over ten minutes of them,
# while a widget resends within seconds of a lost ack or of reconnecting.
RECENT_MESSAGE_IDS = 20_000
MESSAGE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
REST_PREFIX = "rest:"


class WebChatOutput(SocketIOOutput):
    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


def _conversation_id(value: Any) -> Optional[str]:
    """A usable conversation id (sender / session id), or None."""
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_SENDER_CHARS:
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: no database can store them
        return None
    return value


class SessionTokens:
    """Session tokens: which conversation a widget may come back to, signed with the channel's key."""

    def __init__(self, key: str, seconds: int = SESSION_SECONDS):
        if len(key or "") < 32:
            raise ValueError("channels.web.WebChatInput needs its session_key (channels/credentials.py derives "
                             "it from CHANNEL_SECRET_KEY)")
        self.key, self.seconds = key, seconds

    def issue(self, conversation_id: str) -> str:
        now = int(time.time())
        return jwt.encode({"sub": conversation_id, "iat": now, "exp": now + self.seconds}, self.key,
                          algorithm=SESSION_ALGORITHM)

    def allows(self, token: Any, conversation_id: str) -> bool:
        """True if the token is valid, unexpired and issued for exactly this conversation."""
        if not isinstance(token, str):
            return False
        try:
            claims = jwt.decode(token, self.key, algorithms=[SESSION_ALGORITHM], options={"require": ["sub", "exp"]})
        except jwt.InvalidTokenError:
            return False
        return hmac.compare_digest(str(claims["sub"]).encode(), conversation_id.encode())


class RecentIds:
    """The most recent `memory` keys seen; `seen` records a key and says whether it was there."""

    def __init__(self, memory: int = RECENT_MESSAGE_IDS):
        self.memory = memory
        self._keys: "OrderedDict[Tuple[str, str], None]" = OrderedDict()

    def seen(self, key: Tuple[str, str]) -> bool:
        if key in self._keys:
            self._keys.move_to_end(key)
            return True
        self._keys[key] = None
        while len(self._keys) > self.memory:
            self._keys.popitem(last=False)
        return False


# Where the conversation bound to a socket, and the client's address, are kept in its python-socketio session.
CONVERSATION = "conversation_id"
ADDRESS = "client_address"


class WebChatInput(SocketIOInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        channel = super().from_credentials(credentials)
        # The web pages allowed to host the widget; [] lets any page connect.
        channel.allowed_origins = list((credentials or {}).get("cors_allowed_origins") or [])
        channel.sessions = SessionTokens((credentials or {}).get("session_key", ""))
        channel.received = RecentIds()
        channel.handling = set()
        return channel

    allowed_origins: List[str] = []
    sessions: SessionTokens
    received: RecentIds
    # Messages being handled after their ack (kept referenced until done).
    handling: Set["asyncio.Task[Any]"]

    def blueprint(self, on_new_message):
        guarded = guard.wrap(on_new_message)
        # Rasa's; its session_request and user_message_evt handlers are replaced below.
        blueprint = super().blueprint(guarded)
        sio, namespace = self.sio, self.namespace
        if self.allowed_origins:
            sio.eio.cors_allowed_origins = list(self.allowed_origins)

        async def tell(sid: Text, text: Text) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid, namespace=namespace)

        async def socket_session(sid: Text) -> Dict[str, Any]:
            try:
                return await sio.get_session(sid, namespace=namespace)
            except KeyError:  # the socket has gone meanwhile
                return {}

        def address_of(sid: Text) -> Optional[str]:
            """The visitor's address, from the HTTP request that opened the socket (engine.io keeps it)."""
            request = (sio.get_environ(sid, namespace=namespace) or {}).get("sanic.request")
            return guard.client_address(request) if request is not None else None

        @sio.on("session_request", namespace=namespace)
        async def session_request(sid: Text, data: Any) -> None:
            data = data if isinstance(data, dict) else {}
            asked = _conversation_id(data.get("session_id"))
            if asked is not None and self.sessions.allows(data.get("session_token"), asked):
                conversation = asked
            else:
                # Never the id the client named: a conversation id alone is no proof of owning it.
                conversation = uuid.uuid4().hex
                if asked is not None:
                    logger.info("A widget asked for conversation %s without a valid session token (expired, "
                                "forged or another conversation's): it was given a new conversation",
                                conversation_tag(asked))
            previous = (await socket_session(sid)).get(CONVERSATION)
            if previous and previous != conversation:
                sio.leave_room(sid, previous, namespace=namespace)
            try:
                await sio.save_session(sid, {CONVERSATION: conversation, ADDRESS: address_of(sid)},
                                       namespace=namespace)
            except KeyError:
                return
            sio.enter_room(sid, conversation, namespace=namespace)  # the conversation's replies reach it
            await sio.emit("session_confirm", {"session_id": conversation,
                                               "session_token": self.sessions.issue(conversation)},
                           room=sid, namespace=namespace)

        @sio.on(self.user_message_evt, namespace=namespace)
        async def handle_message(sid: Text, data: Any) -> Dict[str, str]:
            """The returned value is the message's ack: the widget resends a message until it gets one."""
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                await tell(sid, UNREADABLE)
                return {"status": "unreadable"}
            session = await socket_session(sid)
            conversation = session.get(CONVERSATION)
            named = data.get("session_id")
            if conversation is None or (named is not None and named != conversation):
                await tell(sid, NO_SESSION)
                return {"status": "no_session"}
            message_id = data.get("message_id")
            if message_id is not None:
                if not isinstance(message_id, str) or not MESSAGE_ID.fullmatch(message_id):
                    await tell(sid, UNREADABLE)
                    return {"status": "unreadable"}
                if self.received.seen((conversation, message_id)):
                    return {"status": "duplicate"}  # a resend of a message already received
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            message = UserMessage(data.get("message", ""), WebChatOutput(sio, self.bot_message_evt), conversation,
                                  input_channel=self.name(), message_id=message_id,
                                  metadata=metadata if isinstance(metadata, dict) else {})
            # Acknowledged once accepted, not once answered: the answer may take a while, and the
            # widget must not take a slow answer for a lost message.
            # The guard's per-address limit reads the address from the context the task is created in.
            address = set_client_address(session.get(ADDRESS))
            try:
                task = asyncio.create_task(guarded(message))
            finally:
                reset_client_address(address)
            self.handling.add(task)
            task.add_done_callback(self.handling.discard)
            return {"status": "received"}

        return blueprint


def _bad_request(reason: str, status: int = 400):
    return response.json({"error": reason}, status=status)


def check_rest_request(request: Request, token: str):
    """None if the request is one the REST channel can handle, else the 4xx answer."""
    if not _bearer_token_is(request, token):
        answer = _bad_request("this channel needs the header Authorization: Bearer <REST_CHANNEL_TOKEN> "
                              "(make run keeps the token in var/rest-token)", 401)
        answer.headers["WWW-Authenticate"] = "Bearer"
        return answer
    if len(request.body or b"") > MAX_BODY_BYTES:
        return _bad_request(f"the request is larger than {MAX_BODY_BYTES // 1024} kB", 413)
    if (request.content_type or "").split(";")[0].strip().lower() != "application/json":
        return _bad_request("send JSON with the header Content-Type: application/json")
    try:
        body = request.load_json()  # parsed once: Rasa's handler reads the same request.json
    except InvalidUsage:
        return _bad_request("the body is not valid JSON")
    if not isinstance(body, dict):
        return _bad_request('the body should be a JSON object: {"sender": "...", "message": "..."}')
    if _conversation_id(body.get("sender")) is None:
        return _bad_request(f'"sender" should be the conversation id, text of 1-{MAX_SENDER_CHARS} characters')
    if not isinstance(body.get("message"), str):
        return _bad_request('"message" should be text')
    if not isinstance(body.get("metadata") or {}, dict):
        return _bad_request('"metadata" should be a JSON object')
    return None


def _bearer_token_is(request: Request, token: str) -> bool:
    scheme, _, given = (request.headers.get("Authorization") or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class GuardedRestInput(GuardedChannel, RestInput):
    """/webhooks/rest/webhook, as Rasa's "rest" channel: a token, its own conversations, checked and guarded."""

    def __init__(self, token: str):
        if len(token or "") < 32:
            raise ValueError("channels.web.GuardedRestInput needs its token, 32 or more characters "
                             "(channels/credentials.py puts REST_CHANNEL_TOKEN there)")
        self.token = token

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "GuardedRestInput":
        return cls((credentials or {}).get("token", ""))

    async def _extract_sender(self, req: Request) -> Optional[Text]:
        # Namespaced: "+13055550188" here is never the SMS visitor of that number, nor any
        # widget or Telegram conversation.
        return REST_PREFIX + req.json["sender"]

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # not the client's say: the rate limit is per channel and sender

    def blueprint(self, on_new_message) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def check_request(request: Request):
            if request.method == "POST":
                return check_rest_request(request, self.token)
            return None

        return blueprint
