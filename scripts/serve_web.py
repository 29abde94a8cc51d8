"""Serves the clinic's demo page with the chat widget (web/), for `make run` and the browser test.

    python scripts/serve_web.py --port 8080 --rasa-url http://localhost:5005

Only web/index.html and web/static/ are served; {{RASA_URL}} in the page is
replaced by --rasa-url so the widget talks to the running assistant.
"""
from __future__ import annotations

import argparse
import sys
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"


class Handler(SimpleHTTPRequestHandler):
    rasa_url = "http://localhost:5005"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            page = (WEB / "index.html").read_text(encoding="utf-8").replace("{{RASA_URL}}", self.rasa_url)
            data = page.encode("utf-8")
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        elif path.startswith("/static/"):
            super().do_GET()
        else:
            self.send_error(404)

    def log_message(self, *args):
        pass


def make_server(port: int, rasa_url: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    handler = type("PageHandler", (Handler,), {"rasa_url": rasa_url})
    return ThreadingHTTPServer((host, port), partial(handler, directory=str(WEB)))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default="http://localhost:5005")
    args = parser.parse_args()
    if not (WEB / "static" / "chat-widget.js").exists():
        print("web/static/chat-widget.js is missing: `make widget` builds it.", file=sys.stderr)
        return 1
    server = make_server(args.port, args.rasa_url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
