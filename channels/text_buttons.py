"""Buttons on channels that only show text (SMS, WhatsApp via Twilio).

A message with buttons becomes one text with numbered choices:

    Which kind of massage would you like? ...
    1. Swedish
    2. Deep tissue
    Reply with a number, or type your answer.

and a reply of "2" (or "2.", "#2", "option 2") is read as the second button's
payload. The choices offered last are remembered per conversation, in memory,
for an hour: enough for a reply; lost on a restart, when the number is simply
read as text.
"""
from __future__ import annotations

import re
import time
from typing import Any, Dict, List, Optional, Text, Tuple

CHOICE = re.compile(r"^\s*(?:#|no\.?|number|option|choice)?\s*(\d{1,2})\s*[.)]?\s*$", re.I)
REMEMBER_SECONDS = 3600


def numbered(text: Text, buttons: List[Dict[Text, Any]]) -> Text:
    lines = [text.rstrip(), ""] if text else []
    lines += [f"{i}. {button.get('title') or button.get('payload')}" for i, button in enumerate(buttons, 1)]
    lines.append("Reply with a number, or type your answer.")
    return "\n".join(lines)


class OfferedChoices:
    """The payloads last offered to each conversation."""

    def __init__(self) -> None:
        self._offered: Dict[Text, Tuple[float, List[Text]]] = {}

    def remember(self, conversation: Text, buttons: List[Dict[Text, Any]]) -> None:
        self._offered[str(conversation)] = (time.time(), [b.get("payload") or b.get("title") for b in buttons])

    def resolve(self, conversation: Text, text: Optional[Text]) -> Optional[Text]:
        """The payload a numbered reply stands for; other text unchanged."""
        match = CHOICE.match(text or "")
        offered = self._offered.get(str(conversation))
        if not match or not offered or time.time() - offered[0] > REMEMBER_SECONDS:
            return text
        index = int(match.group(1)) - 1
        return offered[1][index] if 0 <= index < len(offered[1]) else text
