"""The chat widget in a real browser (Debian's chromium, driven by Playwright),
on the clinic's demo page, against the running assistant.

Skipped, with the reason printed, when chromium or Playwright is missing
(`make test` installs both where it can). The screenshot is saved to
results/browser/widget.png; axe-core's findings are printed.
"""
from __future__ import annotations

import json
import shutil
import threading
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.running_assistant import free_port

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
AXE = ROOT / "web" / "widget" / "node_modules" / "axe-core" / "axe.min.js"
WIDGET = ROOT / "web" / "static" / "chat-widget.js"
RESULTS = ROOT / "results" / "browser"
# Without these, chromium tries Google's services at start, which this machine's network refuses.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]

playwright_api = pytest.importorskip("playwright.sync_api", reason="Playwright is not installed (make test installs it)")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is not installed (make test installs it as root with apt-get)",
                allow_module_level=True)
if not WIDGET.exists() or not AXE.exists():
    pytest.skip("the widget is not built (make widget)", allow_module_level=True)


def serve_page(rasa_url: str, port: int = 0):
    from scripts.serve_web import make_server

    server = make_server(port or free_port(), rasa_url)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def page_url(assistant):
    # On the port whose origin the assistant allows (a page elsewhere may not use the widget).
    server, url = serve_page(f"http://localhost:{assistant.port}", assistant.page_ports[0])
    yield url
    server.shutdown()


def bot_messages(page):
    return page.locator(".ccw-bot")


def test_a_visitor_chats_in_the_widget_and_nothing_in_a_message_runs(browser, page_url, capsys):
    page = browser.new_page(viewport={"width": 1100, "height": 800})
    alerts = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))

    page.goto(page_url)
    launcher = page.get_by_role("button", name="Chat with us")
    assert launcher.get_attribute("aria-expanded") == "false"
    launcher.click()
    assert launcher.get_attribute("aria-expanded") == "true"
    page.get_by_text("virtual assistant of Miami Massage and Head Spa").wait_for(timeout=30000)

    # An FAQ typed in the box.
    box = page.get_by_label("Your message")
    box.fill("What causes sciatica?")
    box.press("Enter")
    page.locator(".ccw-typing").wait_for(timeout=5000)  # the typing indicator while it answers
    page.locator(".ccw-bot", has_text="sciatic nerve").first.wait_for(timeout=30000)

    # A quick reply, clicked.
    page.locator(".ccw-choice", has_text="Symptoms").first.click()
    page.locator(".ccw-user", has_text="Symptoms").wait_for(timeout=5000)
    answers_before_reload = bot_messages(page).count()
    page.wait_for_function(f"document.querySelectorAll('.ccw-bot').length > {answers_before_reload}", timeout=30000)

    # A reload keeps the conversation (same tab) and the panel open.
    shown = bot_messages(page).count()
    page.reload()
    page.locator(".ccw-panel").wait_for(state="visible", timeout=10000)
    assert bot_messages(page).count() == shown
    assert page.locator(".ccw-user", has_text="What causes sciatica?").count() == 1

    # Markup in a message is shown as text and never runs.
    attack = "<img src=x onerror=alert(1)>"
    box = page.get_by_label("Your message")
    box.fill(attack)
    box.press("Enter")
    page.locator(".ccw-user", has_text=attack).wait_for(timeout=5000)
    page.wait_for_timeout(3000)
    assert alerts == []
    assert page.locator(".ccw-log img").count() == 0

    # The emergency advice stands out, and is announced (role=alert).
    box.fill("since this morning my groin is numb and i cant pee")
    box.press("Enter")
    emergency = page.locator(".ccw-emergency")
    emergency.wait_for(timeout=30000)
    assert emergency.first.inner_text().startswith("Please call 911") or "Please call 911" in emergency.first.inner_text()
    assert emergency.first.get_attribute("role") == "alert"

    RESULTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(RESULTS / "widget.png"))
    with capsys.disabled():
        print(f"\nWidget screenshot: {RESULTS / 'widget.png'}")
    page.close()


def test_keyboard_only_use_and_axe_core_finds_no_serious_problem(browser, page_url, capsys):
    page = browser.new_page()
    page.goto(page_url)
    # Keyboard only: Tab to the launcher, Enter opens it and puts the cursor in the box.
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.className") == "ccw-launcher":
            break
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "ccw-input"
    page.keyboard.type("How does massage help sciatica?")
    page.keyboard.press("Enter")
    page.locator(".ccw-bot", has_text="massage").first.wait_for(timeout=30000)
    page.locator(".ccw-choice").first.wait_for(timeout=30000)
    page.keyboard.press("Escape")
    assert page.evaluate("document.activeElement.className") == "ccw-launcher"  # focus goes back
    page.keyboard.press("Enter")

    page.add_script_tag(path=str(AXE))
    result = page.evaluate("async () => await axe.run(document.querySelector('.ccw'))")
    violations = [{"id": v["id"], "impact": v["impact"], "nodes": len(v["nodes"])} for v in result["violations"]]
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "axe.json").write_text(json.dumps(result["violations"], indent=2))
    with capsys.disabled():
        print(f"\naxe-core {result['testEngine']['version']} on the open widget: {len(result['passes'])} rules "
              f"passed, violations: {json.dumps(violations) if violations else 'none'} ({RESULTS / 'axe.json'})")
    assert not [v for v in violations if v["impact"] in ("serious", "critical")]
    page.close()


# Holds back the server's session_confirm for 3 s, as a slow network or a busy server may.
DELAY_SESSION_CONFIRM = """
(() => {
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    set onmessage(handler) {
      super.onmessage = (event) => {
        if (typeof event.data === "string" && event.data.includes("session_confirm")) {
          setTimeout(() => handler(event), 3000);
        } else {
          handler(event);
        }
      };
    }
    get onmessage() { return super.onmessage; }
  };
})();
"""


def test_a_message_typed_before_the_session_is_confirmed_is_answered(browser, page_url):
    """A visitor who types at once (connected, session not confirmed yet) gets the greeting and the
    answer; the message used to go out without a session id and was dropped by the server."""
    page = browser.new_page()
    page.add_init_script(DELAY_SESSION_CONFIRM)
    page.goto(page_url)
    page.get_by_role("button", name="Chat with us").click()
    page.wait_for_timeout(1000)  # connected by now (localhost); the confirmation is 2 s away
    box = page.get_by_label("Your message")
    box.fill("What causes sciatica?")
    box.press("Enter")
    page.locator(".ccw-bot", has_text="sciatic nerve").first.wait_for(timeout=30000)
    assert page.locator(".ccw-bot", has_text="virtual assistant").count() >= 1
    assert page.locator(".ccw-bot", has_text="lost track").count() == 0
    page.close()


class SwitchableProxy:
    """A TCP proxy in front of the assistant that can be cut and restored (a network outage)."""

    def __init__(self, target_port: int):
        self.port, self.target = free_port(), target_port
        self.listener = None
        self.sockets = []

    def start(self) -> "SwitchableProxy":
        import socket

        self.listener = socket.create_server(("127.0.0.1", self.port))  # SO_REUSEADDR set
        threading.Thread(target=self._accept, args=(self.listener,), daemon=True).start()
        return self

    def _accept(self, listener):
        import socket

        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source, sink):
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for s in (source, sink):
                try:
                    s.close()
                except OSError:
                    pass

    def stop(self):
        import socket

        try:
            self.listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept()
        except OSError:
            pass
        self.listener.close()
        for s in self.sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
                s.close()
            except OSError:
                pass
        self.sockets = []


@contextmanager
def greeted_then_cut_off(browser, assistant):
    """A widget greeted through a proxy that is then switched off and seen to be: (page, proxy, status)."""
    proxy = SwitchableProxy(assistant.port).start()
    server, url = serve_page(f"http://127.0.0.1:{proxy.port}", assistant.page_ports[1])
    try:
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Chat with us").click()
        page.get_by_text("virtual assistant of Miami Massage and Head Spa").wait_for(timeout=30000)
        status = page.locator(".ccw-status")
        proxy.stop()
        status.wait_for(state="visible", timeout=15000)
        yield page, proxy, status
        page.close()
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()  # its port is the next test's


def test_the_widget_says_when_the_server_is_gone_and_recovers_when_it_returns(browser, assistant):
    with greeted_then_cut_off(browser, assistant) as (page, proxy, status):
        assert "Can't reach the assistant" in status.inner_text() and "911" in status.inner_text()
        proxy.start()
        status.wait_for(state="hidden", timeout=30000)  # reconnected by itself
        box = page.get_by_label("Your message")
        box.fill("What causes sciatica?")
        box.press("Enter")
        page.locator(".ccw-bot", has_text="sciatic nerve").first.wait_for(timeout=30000)


def test_a_message_typed_while_the_server_is_unreachable_waits_and_is_answered_once(browser, assistant):
    """Typed during an outage: shown as waiting, sent on reconnect, processed once (the tracker store
    holds it once). The widget used to say it wasn't sent and never send it."""
    question = "What causes sciatica?"
    with greeted_then_cut_off(browser, assistant) as (page, proxy, status):
        box = page.get_by_label("Your message")
        box.fill(question)
        box.press("Enter")
        sent = page.locator(".ccw-user", has_text=question)
        sent.locator(".ccw-queued", has_text="will send when reconnected").wait_for(timeout=5000)
        assert "will send when reconnected" in status.inner_text() and "911" in status.inner_text()

        proxy.start()
        page.locator(".ccw-bot", has_text="sciatic nerve").first.wait_for(timeout=60000)
        sent.locator(".ccw-queued").wait_for(state="detached", timeout=10000)
        status.wait_for(state="hidden", timeout=10000)
        # One more message answered: a second copy of the first, had one been sent, is processed by now.
        box.fill("hello")
        box.press("Enter")
        page.locator(".ccw-bot", has_text="virtual assistant").nth(1).wait_for(timeout=30000)
        conversation = page.evaluate("JSON.parse(sessionStorage.getItem('clinic-chat:session'))")
        users = [e["text"] for e in assistant.tracker(conversation)["events"] if e["event"] == "user"]
        assert users.count(question) == 1 and users[-1] == "hello", users
        assert sent.count() == 1


def test_an_unreachable_server_is_said_plainly(browser):
    server, url = serve_page(f"http://127.0.0.1:{free_port()}")  # nothing listens there
    try:
        page = browser.new_page()
        page.goto(url)
        page.get_by_role("button", name="Chat with us").click()
        status = page.locator(".ccw-status")
        status.wait_for(state="visible", timeout=15000)
        assert "Can't reach the assistant" in status.inner_text() and "911" in status.inner_text()
        page.close()
    finally:
        server.shutdown()
