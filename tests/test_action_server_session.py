"""The Rasa server's calls to the action server share one kept-alive connection
(components/action_server_session.py), and an action server that restarts in between is used
at once, the visitor getting the action's reply, not the apology. Real HTTP: a local action
server speaking the action server's protocol, called by Rasa's own RemoteAction."""
from __future__ import annotations

import asyncio

from aiohttp import web
from rasa.core.actions.action import RemoteAction
from rasa.core.channels.channel import CollectingOutputChannel
from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.shared.core.trackers import DialogueStateTracker
from rasa.utils.endpoints import EndpointConfig

import components  # noqa: F401  (installs the shared session, as Rasa's loading of the pipeline does)


async def start_action_server(port: int, connections: set):
    async def webhook(request: web.Request) -> web.Response:
        connections.add(request.transport.get_extra_info("peername"))
        call = await request.json()
        return web.json_response({"events": [], "responses": [{"text": f"ran {call['next_action']}"}]})

    app = web.Application()
    app.router.add_post("/webhook", webhook)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]


def test_calls_reuse_one_connection_and_a_restarted_action_server_is_used_at_once():
    async def scenario():
        connections: set = set()
        runner, port = await start_action_server(0, connections)
        endpoint = EndpointConfig(f"http://127.0.0.1:{port}/webhook")
        channel, tracker = CollectingOutputChannel(), DialogueStateTracker("visitor", [])
        domain = Domain.empty()
        nlg = TemplatedNaturalLanguageGenerator(domain.responses)

        said = []

        async def call(name):
            events = await RemoteAction(name, endpoint).run(channel, nlg, tracker, domain)
            said.extend(e.text for e in events)

        for _ in range(5):
            await call("action_greet")
        reused = len(connections)
        await runner.cleanup()  # the action server restarts on the same port
        connections.clear()
        runner, _ = await start_action_server(port, connections)
        try:
            await call("action_greet")
        finally:
            await runner.cleanup()
        return reused, said + [m["text"] for m in channel.messages]  # the apology would be a message

    reused, said = asyncio.run(scenario())
    assert reused == 1
    assert said == ["ran action_greet"] * 6  # every call answered, the one after the restart too
