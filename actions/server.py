"""The action server: rasa-sdk's own (`rasa run actions`), started with two differences.

    python -m actions.server [--port 5055] [--host 127.0.0.1]

- It listens on 127.0.0.1 unless told otherwise (--host or ACTIONS_HOST): it has no
  authentication of its own, so only the Rasa server on this machine should reach it.
- Its listen backlog is BACKLOG instead of Sanic's 100. Rasa 3.6 opens a new connection
  for every custom-action call, so a burst of visitors (700 at once in `make load-test`)
  overflowed the queue and connections were reset: measured, 73 of 700 simultaneous calls
  failed with the default, none with this.
- A connection may wait IDLE_SECONDS for its request instead of Sanic's 5 (see below).
- The outbox's retry loop (actions/outbox.py) starts with it and stops with it: what is
  waiting goes out without waiting for a visitor's message.
"""
from __future__ import annotations

import argparse
import logging
import os

from rasa_sdk import utils
from rasa_sdk.endpoint import create_app

from actions import outbox

BACKLOG = 2048
IDLE_SECONDS = 120


async def start_outbox_retries(app, loop) -> None:
    outbox.start_retry_loop()  # not awaited: it runs as long as the server


async def stop_outbox_retries(app, loop) -> None:
    await outbox.stop_retry_loop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("ACTIONS_PORT", 5055)))
    parser.add_argument("--host", default=os.environ.get("ACTIONS_HOST", "127.0.0.1"))
    args = parser.parse_args()

    logging.getLogger("matplotlib").setLevel(logging.WARN)
    utils.configure_colored_logging(logging.INFO)
    utils.update_sanic_log_level()
    app = create_app("actions")
    # Sanic drops a connection that sends no request within KEEP_ALIVE_TIMEOUT (5 s), new ones
    # included. A Rasa server busy with a burst can take longer than that between opening the
    # connection and writing the call: 700 of 700 calls failed so, in a test with its loop held 8 s.
    app.config.KEEP_ALIVE_TIMEOUT = IDLE_SECONDS
    app.register_listener(start_outbox_retries, "after_server_start")
    app.register_listener(stop_outbox_retries, "before_server_stop")
    logging.getLogger(__name__).info("Action server on http://%s:%d", args.host, args.port)
    app.run(args.host, args.port, workers=1, backlog=BACKLOG, access_log=False)


if __name__ == "__main__":
    main()
