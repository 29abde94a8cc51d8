"""A hung action server (alive, not answering: stopped with SIGSTOP), through the running
assistant. Rasa's own wait is 300 s per custom action, with the widget showing "typing..." all
along; here the visitor gets the apology with the clinic's contacts within seconds, once per
message, and the conversation carries on when the action server runs again (SIGCONT)."""
from __future__ import annotations

import os
import signal
import time

from components.action_server_down import ACTION_TIMEOUT_SECONDS
from tests.running_assistant import text_of

APOLOGY = "Sorry, something went wrong on my side"
# The timeout, plus aiohttp rounding it up to a whole second, plus a busy machine's margin.
WITHIN_SECONDS = 15


def test_a_hung_action_server_gets_the_apology_within_seconds_and_the_booking_carries_on(assistant):
    sender, newcomer = "hung-actions-visitor", "hung-actions-newcomer"
    assert "How long" in text_of(assistant.say(sender, "can I book a hot stone massage"))
    os.kill(assistant.actions.pid, signal.SIGSTOP)
    try:
        for who, message in ((newcomer, "hi"), (sender, "90 minutes")):
            started = time.monotonic()
            said = text_of(assistant.say(who, message))
            took = time.monotonic() - started
            print(f"{message!r} with the action server stopped: apology in {took:.1f} s "
                  f"(timeout {ACTION_TIMEOUT_SECONDS} s)")
            assert took < WITHIN_SECONDS
            assert said.startswith(APOLOGY) and said.count(APOLOGY) == 1  # one apology, however many actions
            assert assistant.clinic["phone"] in said and "911" in said
    finally:
        os.kill(assistant.actions.pid, signal.SIGCONT)
    # Running again: the form asks its next question; the newcomer gets the greeting.
    assert "What day and time" in text_of(assistant.say(sender, "90 minutes"))
    assert "virtual assistant" in text_of(assistant.say(newcomer, "hi"))


def test_after_one_action_timed_out_the_others_of_that_message_are_not_called(monkeypatch):
    """Rasa runs several custom actions for one message (slot extraction, the form's validation,
    the next question...): after the first got no answer, each of the others fails at once
    instead of waiting a timeout of its own, and the visitor gets one apology."""
    import asyncio
    import socket

    import rasa.core.actions.action as rasa_actions
    from rasa.core.actions.action import RemoteAction
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa.utils.endpoints import EndpointConfig

    import components  # noqa: F401  (installs the apology, as Rasa's loading of the pipeline does)

    monkeypatch.setattr(rasa_actions, "DEFAULT_REQUEST_TIMEOUT", 1)
    with socket.socket() as hung:  # accepts connections (the kernel's backlog), never answers
        hung.bind(("127.0.0.1", 0))
        hung.listen(16)
        endpoint = EndpointConfig(f"http://127.0.0.1:{hung.getsockname()[1]}/webhook")
        channel, tracker, domain = CollectingOutputChannel(), DialogueStateTracker("visitor", []), Domain.empty()

        async def one_message():
            took = []
            for name in ("validate_booking_form", "action_ask_booking_length", "action_greet"):
                started = time.monotonic()
                try:
                    await RemoteAction(name, endpoint).run(channel, None, tracker, domain)
                except Exception:
                    pass
                took.append(time.monotonic() - started)
            return took

        first, *others = asyncio.run(one_message())
    assert first >= 1 and all(seconds < 0.1 for seconds in others), (first, others)
    assert [m["text"].startswith(APOLOGY) for m in channel.messages] == [True]
