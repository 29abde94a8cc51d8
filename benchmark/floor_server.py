"""The floor: the HTTP stack Rasa runs on (Sanic, same version, one worker)
answering every REST message with a fixed reply and doing nothing else.
Usage: python -m benchmark.floor_server PORT"""
from __future__ import annotations

import sys

from sanic import Sanic, response


def make_app() -> Sanic:
    app = Sanic("benchmark_floor")

    @app.get("/")
    async def health(_request):
        return response.text("ok")

    @app.post("/webhooks/rest/webhook")
    async def webhook(request):
        sender = (request.json or {}).get("sender", "")
        return response.json([{"recipient_id": sender, "text": "Thanks for your message."}])

    return app


if __name__ == "__main__":
    make_app().run(host="127.0.0.1", port=int(sys.argv[1]), workers=1, access_log=False)
