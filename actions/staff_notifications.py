"""Telling the clinic's staff that something needs a person.

Events (red-flag escalations, hand-overs) go through the outbox (stored first,
then sent to the staff webhook, retried until delivered). They carry the
conversation id, the time and the kind of event, never the visitor's words.
"""
from __future__ import annotations

import logging
from typing import Any, Dict

from actions.outbox import Outbox, send_soon

logger = logging.getLogger(__name__)


def notify_staff(kind: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """Stores the event (so nothing is lost), then sends it in the background."""
    outbox = Outbox()
    payload = outbox.add(kind, fields)
    send_soon(outbox, payload["id"])
    return payload
