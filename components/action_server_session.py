"""One kept-alive HTTP session to the action server, instead of a new one per custom action.

Rasa 3.6's EndpointConfig.request opens a new aiohttp ClientSession (its own connector, a new
TCP connection, closed again) for every custom-action call; a py-spy profile of this assistant
under 8 visitors put about 5% of the Rasa server's busy time there. Here `session()` lends one
session per endpoint and event loop, kept open, so calls reuse the pooled connections. The
action server keeps idle connections for 120 s (actions/server.py), the client for aiohttp's
15 s, so the client drops an idle connection before the server would. A connection the action
server closed (a restart) is dropped from the pool and a new one opened, so a restarted action
server is used at once (tests/test_action_server_session.py). Installed with the other Rasa
adjustments when Rasa loads the project's components (components/__init__.py).
"""
from __future__ import annotations

import asyncio
import weakref
from typing import Dict, Tuple

import aiohttp
from rasa.utils import endpoints
from rasa.utils.endpoints import EndpointConfig

# Per event loop (a session belongs to the loop it was made in), per endpoint.
_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Dict[Tuple, aiohttp.ClientSession]]" = \
    weakref.WeakKeyDictionary()


class _Lent:
    """`async with` gives the shared session and leaves it open."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self._session = session

    async def __aenter__(self) -> aiohttp.ClientSession:
        return self._session

    async def __aexit__(self, *exc_info) -> bool:
        return False


def shared_session(self: EndpointConfig) -> _Lent:
    key = (self.url, tuple(sorted(self.headers.items())), tuple(sorted(self.basic_auth.items())))
    per_loop = _sessions.setdefault(asyncio.get_running_loop(), {})
    session = per_loop.get(key)
    if session is None or session.closed:
        auth = aiohttp.BasicAuth(self.basic_auth["username"], self.basic_auth["password"]) \
            if self.basic_auth else None
        session = aiohttp.ClientSession(
            headers=self.headers, auth=auth,
            timeout=aiohttp.ClientTimeout(total=endpoints.DEFAULT_REQUEST_TIMEOUT),
            # No cap on simultaneous calls, as with a session per call (Rasa's behaviour).
            connector=aiohttp.TCPConnector(limit=0))
        per_loop[key] = session
    return _Lent(session)


def install() -> None:
    EndpointConfig.session = shared_session
