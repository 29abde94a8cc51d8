"""The demo page server (scripts/serve_web.py, what `make run` serves on port 8080), over real HTTP:
the page and the built widget, and nothing else under web/."""
from __future__ import annotations

import http.client
import threading
from pathlib import Path

import pytest

from scripts.serve_web import make_server
from tests.running_assistant import free_port

ROOT = Path(__file__).resolve().parent.parent
WIDGET = ROOT / "web" / "static" / "chat-widget.js"


@pytest.fixture(scope="module")
def page_server():
    if not WIDGET.exists():
        pytest.skip("web/static/chat-widget.js is not built (make widget)")
    server = make_server(free_port(), "http://localhost:5999")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def get(port: int, path: str, method: str = "GET"):
    """(status, headers, body) for the path exactly as written (http.client sends it as it is)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request(method, path)
        answer = connection.getresponse()
        return answer.status, answer.headers, answer.read()
    finally:
        connection.close()


def test_the_page_and_the_widget_are_served(page_server):
    for path in ("/", "/index.html", "/?utm_source=x"):
        status, headers, body = get(page_server, path)
        assert status == 200 and headers["Content-Type"].startswith("text/html"), path
        assert b'data-rasa-url="http://localhost:5999"' in body and b"{{RASA_URL}}" not in body
    status, headers, body = get(page_server, "/static/chat-widget.js")
    assert status == 200 and "javascript" in headers["Content-Type"] and body == WIDGET.read_bytes()
    status, headers, body = get(page_server, "/static/chat-widget.js", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) == WIDGET.stat().st_size


@pytest.mark.parametrize("path", [
    # Other files under web/: the widget's sources and package files.
    "/static/%2e%2e/widget/src/chat-widget.js",
    "/static/%2E%2E/widget/package.json",
    "/static/..%2fwidget/package.json",
    "/static/%2e%2e%2fwidget%2fsrc%2fchat-widget.js",
    "/static/../widget/src/chat-widget.js",
    "/static/../index.html",
    "/static/%2e%2e/index.html",
    "/widget/src/chat-widget.js",
    "/widget/package.json",
    "/static/%2e%2e/%2e%2e/README.md",
    "/static/..%5cwidget%5cpackage.json",
    # Directory listings.
    "/static/",
    "/static",
    "/static/%2e%2e/",
    "/static/%2e%2e/widget/",
    "/widget/",
    # Other spellings of the allowed paths are not the allowed paths.
    "/static//chat-widget.js",
    "/static/./chat-widget.js",
    "/static/chat-widget.js/",
])
def test_nothing_else_is_served_and_no_directory_is_listed(page_server, path):
    for method in ("GET", "HEAD"):
        status, _, body = get(page_server, path, method)
        assert status == 404, (method, path, body[:200])
        assert b"chat-widget" not in body and b"Directory listing" not in body and b"<li>" not in body
