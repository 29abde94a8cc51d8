"""The website's channels: the widget's socket.io channel and the REST webhook,
both guarded (channels/guard.py) and strict about what they accept.

WebChatInput is Rasa's socketio channel (same name, /socket.io path and settings) with:
- Rasa 3.6's SocketIOOutput.send_custom_json fixed: it calls
  `sio.emit(event, **json_message)`, so a custom payload (ours: {"red_flag_tier":
  "emergency"}, which the widget shows distinctly) raised TypeError and the rest of
  the reply was lost; here it is sent as {"custom": {...}}, like the REST channel does;
- only the web pages in `cors_allowed_origins` may connect (a browser's Origin header
  is checked, for websockets too, which CORS alone does not cover);
- a message it cannot read (not an object, no session id, a message that is not text)
  gets a reply saying so instead of being dropped without a word.

GuardedRestInput is Rasa's REST channel (/webhooks/rest/webhook) that answers a request
it cannot read with 400 (not JSON, not an object, no "sender" or "message" text), 413
when the body is over MAX_BODY_BYTES, instead of a 500 or an empty answer.
"""
from __future__ import annotations

import json
from typing import Any, Dict, List, Optional, Text

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput
from sanic import Blueprint, response
from sanic.exceptions import InvalidUsage
from sanic.request import Request

from channels.guard import GuardedChannel, guard

MAX_BODY_BYTES = 64 * 1024
MAX_SENDER_CHARS = 200
UNREADABLE = "Sorry, I couldn't read that message. Please type your question as text and send it again."
NO_SESSION = "Sorry, I lost track of our conversation. Please reload the page and send your message again."


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


class WebChatInput(SocketIOInput):
    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[Text, Any]]) -> "WebChatInput":
        channel = super().from_credentials(credentials)
        # The web pages allowed to host the widget; [] lets any page connect.
        channel.allowed_origins = list((credentials or {}).get("cors_allowed_origins") or [])
        return channel

    allowed_origins: List[str] = []

    def blueprint(self, on_new_message):
        guarded = guard.wrap(on_new_message)
        blueprint = super().blueprint(guarded)  # Rasa's, whose user_message_evt handler is replaced below
        sio = self.sio
        if self.allowed_origins:
            sio.eio.cors_allowed_origins = list(self.allowed_origins)

        async def tell(sid: Text, text: Text) -> None:
            await sio.emit(self.bot_message_evt, {"text": text}, room=sid)

        @sio.on(self.user_message_evt, namespace=self.namespace)
        async def handle_message(sid: Text, data: Any) -> None:
            if not isinstance(data, dict) or not isinstance(data.get("message", ""), str):
                return await tell(sid, UNREADABLE)
            if self.session_persistence:
                sender_id = _conversation_id(data.get("session_id"))
                if sender_id is None:
                    return await tell(sid, NO_SESSION)
            else:
                sender_id = sid
            metadata = data.get(self.metadata_key) or {}
            if isinstance(metadata, str):
                try:
                    metadata = json.loads(metadata)
                except ValueError:
                    metadata = {}
            await guarded(UserMessage(data.get("message", ""), WebChatOutput(sio, self.bot_message_evt), sender_id,
                                      input_channel=self.name(),
                                      metadata=metadata if isinstance(metadata, dict) else {}))

        return blueprint


def _bad_request(reason: str, status: int = 400):
    return response.json({"error": reason}, status=status)


def check_rest_request(request: Request):
    """None if the request is one the REST channel can handle, else the 4xx answer."""
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


class GuardedRestInput(GuardedChannel, RestInput):
    """/webhooks/rest/webhook, as Rasa's "rest" channel, checked and guarded."""

    def _extract_input_channel(self, req: Request) -> Text:
        return self.name()  # not the client's say: the rate limit is per channel and sender

    def blueprint(self, on_new_message) -> Blueprint:
        blueprint = super().blueprint(on_new_message)

        @blueprint.middleware("request")
        async def check_request(request: Request):
            if request.method == "POST":
                return check_rest_request(request)
            return None

        return blueprint
