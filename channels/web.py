"""The website widget's socket.io channel, with a fix for Rasa 3.6.

Rasa 3.6's SocketIOOutput.send_custom_json calls `sio.emit(event, **json_message)`,
so any custom payload (ours: {"red_flag_tier": "emergency"}, which the widget
uses to show the emergency advice distinctly) raises TypeError and the rest of
the reply is lost. WebChatInput is Rasa's socketio channel (same name, same
/socket.io path, same settings) whose output sends custom JSON as
{"custom": {...}}, like the REST channel does.
"""
from __future__ import annotations

from typing import Any, Dict, Text

import rasa.core.channels.socketio as rasa_socketio
from rasa.core.channels.socketio import SocketIOInput, SocketIOOutput


class WebChatOutput(SocketIOOutput):
    async def send_custom_json(self, recipient_id: Text, json_message: Dict[Text, Any], **kwargs: Any) -> None:
        await self._send_message(recipient_id, {"custom": json_message})


class WebChatInput(SocketIOInput):
    def blueprint(self, on_new_message):
        # Rasa's handler builds its output channel from the module's SocketIOOutput
        # name each time a message arrives; point that name at the fixed class.
        rasa_socketio.SocketIOOutput = WebChatOutput
        return super().blueprint(on_new_message)
