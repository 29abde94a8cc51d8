"""Serves the clinic's demo page with the chat widget (web/), for `make run` and the browser test.

    python scripts/serve_web.py --port 8080 --rasa-url http://localhost:5005

Exactly two things are served: the page (/ or /index.html, with {{RASA_URL}} replaced by
--rasa-url so the widget talks to the running assistant) and the built widget
(/static/chat-widget.js). Every other path gets 404: no other file under web/ (the widget's
sources, its node_modules), no directory listing, whatever the path's spelling.
"""
from __future__ import annotations

import argparse
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional, Tuple

WEB = Path(__file__).resolve().parent.parent / "web"
PAGE = WEB / "index.html"
WIDGET = WEB / "static" / "chat-widget.js"


class Handler(BaseHTTPRequestHandler):
    rasa_url = "http://localhost:5005"

    def _content(self) -> Optional[Tuple[bytes, str]]:
        """(body, content type) for an allowed path, compared as sent (no decoding, no normalising)."""
        path = self.path.split("?", 1)[0]
        if path in ("/", "/index.html"):
            page = PAGE.read_text(encoding="utf-8").replace("{{RASA_URL}}", self.rasa_url)
            return page.encode("utf-8"), "text/html; charset=utf-8"
        if path == "/static/chat-widget.js":
            return WIDGET.read_bytes(), "text/javascript; charset=utf-8"
        return None

    def _answer(self, with_body: bool) -> None:
        content = self._content()
        if content is None:
            self.send_error(404)
            return
        body, content_type = content
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-cache")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if with_body:
            self.wfile.write(body)

    def do_GET(self):
        self._answer(with_body=True)

    def do_HEAD(self):
        self._answer(with_body=False)

    def log_message(self, *args):
        pass


def make_server(port: int, rasa_url: str, host: str = "127.0.0.1") -> ThreadingHTTPServer:
    return ThreadingHTTPServer((host, port), type("PageHandler", (Handler,), {"rasa_url": rasa_url}))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--rasa-url", default="http://localhost:5005")
    args = parser.parse_args()
    if not WIDGET.exists():
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
