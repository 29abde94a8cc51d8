"""Telling the clinic's staff that something needs a person.

Events (red-flag escalations, hand-overs) go through the outbox (stored first,
then sent to the staff webhook, retried until delivered). They carry the
conversation id, the time and the kind of event, never the visitor's words.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Dict

from actions.outbox import Outbox, send_soon

logger = logging.getLogger(__name__)


def _store(kind: str, fields: Dict[str, Any]):
    outbox = Outbox()
    return outbox, outbox.add(kind, fields)


async def notify_staff(kind: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """Stores the event (so nothing is lost), then sends it in the background. The database is
    used from a worker thread: a slow or locked one holds up this visitor, not every visitor."""
    outbox, payload = await asyncio.to_thread(_store, kind, fields)
    send_soon(outbox, payload["id"])
    return payload
