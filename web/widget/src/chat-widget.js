// The clinic's chat widget. One snippet on any page:
//
//   <script src="https://<your host>/static/chat-widget.js"
//           data-rasa-url="https://<assistant host>" data-title="Miami Massage and Head Spa" defer></script>
//
// It talks to Rasa's socket.io channel (credentials.yml, channels/web.py). The server
// issues the conversation id with a session token; the widget keeps both for this tab
// and shows them back on a reconnect. Each message has an id and waits in sessionStorage
// until the server acknowledges it, so one typed while the server is unreachable is sent
// on reconnect (the server drops a resent id, so never twice). Every message is put on
// the page as text nodes (never innerHTML): a message can't run script or inject markup.
// Links (http/https only) and line breaks are the formatting.
import { io } from "socket.io-client";

const script = document.currentScript;
const SERVER = (script && script.dataset.rasaUrl) || "http://localhost:5005";
const TITLE = (script && script.dataset.title) || "Chat with us";
const EMERGENCY_NUMBER = (script && script.dataset.emergencyNumber) || "911";
// When the server requires it (SOCKETIO_JWT_KEY), the page carries a short-lived token signed
// with that key by the clinic's web server: <script ... data-token="...">.
const TOKEN = (script && script.dataset.token) || "";
const STORE = "clinic-chat:";  // sessionStorage: this tab only, cleared when it closes
// How long the server has to acknowledge a message before it is sent again (it acknowledges
// on receipt, before answering).
const ACK_TIMEOUT_MS = 10000;

const CSS = `
.ccw, .ccw * { box-sizing: border-box; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
.ccw-launcher { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000; border: 0; border-radius: 28px;
  padding: 14px 20px; background: #0b5d5b; color: #fff; font-size: 16px; cursor: pointer; box-shadow: 0 4px 14px rgba(0,0,0,.25); }
.ccw-launcher:focus-visible, .ccw button:focus-visible, .ccw input:focus-visible { outline: 3px solid #f4b400; outline-offset: 2px; }
.ccw-panel { position: fixed; right: 20px; bottom: 84px; z-index: 2147483000; width: min(380px, calc(100vw - 40px));
  height: min(560px, calc(100vh - 120px)); display: flex; flex-direction: column; background: #fff; color: #1b1b1b;
  border-radius: 12px; box-shadow: 0 8px 30px rgba(0,0,0,.3); overflow: hidden; }
.ccw-panel[hidden] { display: none; }
.ccw-header { display: flex; align-items: center; justify-content: space-between; padding: 12px 14px; background: #0b5d5b; color: #fff; }
.ccw-header h2 { margin: 0; font-size: 16px; }
.ccw-close { background: transparent; border: 0; color: #fff; font-size: 22px; line-height: 1; cursor: pointer; padding: 4px 8px; }
.ccw-log { flex: 1; overflow-y: auto; padding: 12px; display: flex; flex-direction: column; gap: 8px; background: #f6f7f7; }
.ccw-msg { max-width: 85%; padding: 9px 12px; border-radius: 12px; white-space: pre-wrap; overflow-wrap: anywhere; font-size: 15px; line-height: 1.4; }
.ccw-bot { align-self: flex-start; background: #fff; border: 1px solid #d5d9d9; }
.ccw-user { align-self: flex-end; background: #0b5d5b; color: #fff; }
.ccw-msg a { color: inherit; text-decoration: underline; }
.ccw-emergency { background: #fdecea; border: 2px solid #b3261e; color: #5f1410; font-weight: 600; }
.ccw-emergency::before { content: "Important: "; }
.ccw-choices { display: flex; flex-wrap: wrap; gap: 6px; align-self: flex-start; max-width: 95%; }
.ccw-choice { border: 1px solid #0b5d5b; background: #fff; color: #0b5d5b; border-radius: 16px; padding: 6px 12px; font-size: 14px; cursor: pointer; }
.ccw-choice:hover { background: #e6f2f1; }
.ccw-typing { align-self: flex-start; color: #555; font-size: 14px; font-style: italic; }
.ccw-queued { display: block; margin-top: 4px; font-size: 13px; font-style: italic; opacity: .9; }
.ccw-note { align-self: center; color: #555; font-size: 13px; text-align: center; }
.ccw-status { padding: 8px 12px; background: #fff4e5; color: #5c3b00; font-size: 14px; border-top: 1px solid #f0c36d; }
.ccw-status[hidden] { display: none; }
.ccw-form { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #d5d9d9; background: #fff; }
.ccw-form input { flex: 1; min-width: 0; padding: 10px; border: 1px solid #8a8f8f; border-radius: 8px; font-size: 15px; }
.ccw-form button { border: 0; border-radius: 8px; padding: 10px 14px; background: #0b5d5b; color: #fff; font-size: 15px; cursor: pointer; }
.ccw-sr { position: absolute; width: 1px; height: 1px; margin: -1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;

function element(tag, attributes = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// Text with http(s) links made clickable; everything else stays text.
function appendRichText(parent, text) {
  const link = /\bhttps?:\/\/[^\s<>"')]+[^\s<>"').,;:!?]/g;
  let last = 0;
  for (const match of text.matchAll(link)) {
    parent.append(document.createTextNode(text.slice(last, match.index)));
    const anchor = element("a", { href: match[0], target: "_blank", rel: "noopener noreferrer" }, match[0]);
    parent.append(anchor);
    last = match.index + match[0].length;
  }
  parent.append(document.createTextNode(text.slice(last)));
}

function load(key, fallback) {
  try { return JSON.parse(sessionStorage.getItem(STORE + key)) ?? fallback; } catch (e) { return fallback; }
}
function save(key, value) {
  try { sessionStorage.setItem(STORE + key, JSON.stringify(value)); } catch (e) { /* private mode: no history */ }
}

// A message id the server can tell a resend by (random; crypto.randomUUID needs https or localhost).
function newMessageId() {
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function createWidget() {
  const style = element("style");
  style.textContent = CSS;
  document.head.append(style);

  const root = element("div", { class: "ccw" });
  const launcher = element("button", { class: "ccw-launcher", type: "button", "aria-expanded": "false",
    "aria-controls": "ccw-panel" }, "Chat with us");
  const panel = element("section", { class: "ccw-panel", id: "ccw-panel", role: "dialog",
    "aria-labelledby": "ccw-title" });
  panel.hidden = true;
  const header = element("div", { class: "ccw-header" });
  header.append(element("h2", { id: "ccw-title" }, TITLE));
  const close = element("button", { class: "ccw-close", type: "button", "aria-label": "Close chat" }, "\u00d7");
  header.append(close);
  const log = element("div", { class: "ccw-log", role: "log", "aria-live": "polite", "aria-label": "Conversation",
    tabindex: "0" });
  const status = element("div", { class: "ccw-status", role: "status" });
  status.hidden = true;
  const form = element("form", { class: "ccw-form" });
  const label = element("label", { for: "ccw-input", class: "ccw-sr" }, "Your message");
  const input = element("input", { id: "ccw-input", type: "text", autocomplete: "off", maxlength: "1000",
    placeholder: "Type your question\u2026" });
  const send = element("button", { type: "submit" }, "Send");
  form.append(label, input, send);
  panel.append(header, log, status, form);
  root.append(panel, launcher);
  document.body.append(root);

  let history = load("history", []);
  let sessionId = load("session", null);
  let sessionToken = load("token", null);
  // Messages not acknowledged by the server yet ({id, text, hidden}), oldest first: kept in
  // sessionStorage so a reload or a lost connection doesn't lose them.
  let outbox = load("outbox", []);
  const inFlight = new Set();
  const userBubbles = new Map();  // message id -> its bubble
  const queuedMarks = new Map();  // message id -> its "will send" note on the bubble
  let socket = null;
  let confirmed = false;  // connected, and the server has confirmed which conversation this is
  let offline = false;  // the connection failed or was lost (not merely still being made)
  let typing = null;
  let lastBot = null;

  function scroll() { log.scrollTop = log.scrollHeight; }

  function showMessage(entry, remember = true) {
    if (entry.from === "choices") {
      const group = element("div", { class: "ccw-choices", role: "group", "aria-label": "Suggested replies" });
      for (const choice of entry.choices) {
        const button = element("button", { class: "ccw-choice", type: "button" }, choice.title);
        button.addEventListener("click", () => sendMessage(choice.title, choice.payload));
        group.append(button);
      }
      log.append(group);
    } else if (entry.from === "note") {
      log.append(element("div", { class: "ccw-note" }, entry.text));
    } else {
      const bubble = element("div", { class: `ccw-msg ccw-${entry.from}` });
      if (entry.from === "user") bubble.append(element("span", { class: "ccw-sr" }, "You said: "));
      appendRichText(bubble, entry.text);
      if (entry.emergency) markEmergency(bubble);
      log.append(bubble);
      if (entry.id) {
        userBubbles.set(entry.id, bubble);
        if (offline && outbox.some((item) => item.id === entry.id)) markQueued(entry.id);
      }
      if (entry.from === "bot") lastBot = { bubble, entry };
    }
    if (remember) { history.push(entry); save("history", history); }
    scroll();
  }

  function markEmergency(bubble) {
    bubble.classList.add("ccw-emergency");
    bubble.setAttribute("role", "alert");  // read out at once by screen readers
  }

  // The bubble of a message that waits for the connection says so until the server has it.
  function markQueued(id) {
    const bubble = userBubbles.get(id);
    if (!bubble || queuedMarks.has(id)) return;
    const mark = element("span", { class: "ccw-queued" }, "Not sent yet: will send when reconnected");
    bubble.append(mark);
    queuedMarks.set(id, mark);
  }

  function setTyping(on) {
    if (on && !typing) {
      typing = element("div", { class: "ccw-typing" }, "The assistant is typing\u2026");
      log.append(typing);
      scroll();
    } else if (!on && typing) {
      typing.remove();
      typing = null;
    }
  }

  function onBotMessage(message) {
    setTyping(false);
    if (message.text) showMessage({ from: "bot", text: String(message.text) });
    const choices = message.quick_replies || message.buttons;
    if (Array.isArray(choices) && choices.length) {
      showMessage({ from: "choices", choices: choices.map((c) => ({ title: String(c.title), payload: String(c.payload) })) });
    }
    const tier = message.custom && message.custom.red_flag_tier;
    if (tier && ["emergency", "urgent", "unclear"].includes(tier) && lastBot) {
      markEmergency(lastBot.bubble);
      lastBot.entry.emergency = true;
      save("history", history);
    }
  }

  function setStatus(text) {
    status.textContent = text || "";
    status.hidden = !text;
  }

  function showUnreachable() {
    const waiting = outbox.some((item) => !item.hidden);
    setStatus("Can't reach the assistant right now; trying again. "
      + (waiting ? "Your message will send when reconnected. " : "")
      + `In an emergency, call ${EMERGENCY_NUMBER}.`);
  }

  function connect() {
    socket = io(SERVER, {
      path: "/socket.io", transports: ["websocket", "polling"], reconnectionDelayMax: 10000,
      auth: TOKEN ? { token: TOKEN } : undefined,
    });
    socket.on("connect", () => {
      offline = false;
      setStatus("");
      // The conversation this tab had, with its token: the server confirms it, or starts a new one.
      socket.emit("session_request", { session_id: sessionId, session_token: sessionToken });
    });
    socket.on("session_confirm", (confirmation) => {
      const id = typeof confirmation === "string" ? confirmation : confirmation && confirmation.session_id;
      if (!id) return;
      if (sessionId && id !== sessionId && history.length) {
        showMessage({ from: "note", text: "A new conversation has started: I no longer have the earlier one." });
      }
      const isNew = id !== sessionId;
      sessionId = id;
      sessionToken = (confirmation && confirmation.session_token) || null;
      save("session", sessionId);
      save("token", sessionToken);
      confirmed = true;
      // Greet a new visitor first, then send what waited for the connection.
      if (isNew && !history.some((entry) => entry.from === "bot")) {
        outbox.unshift({ id: newMessageId(), text: "/greet", hidden: true });
        save("outbox", outbox);
        setTyping(true);
      }
      if (outbox.some((item) => !item.hidden)) setTyping(true);
      for (const item of outbox) deliver(item);
    });
    socket.on("bot_uttered", onBotMessage);
    const unreachable = () => {
      confirmed = false;
      offline = true;
      // What socket.io would send first thing on reconnecting, before the session is confirmed
      // (the server couldn't place it): the outbox sends it again after the confirmation.
      socket.sendBuffer = [];
      setTyping(false);
      for (const item of outbox) markQueued(item.id);
      showUnreachable();
    };
    socket.on("connect_error", unreachable);
    socket.on("disconnect", unreachable);
  }

  // Sends one message and waits for the server's acknowledgement; without one in time, sends it
  // again (the server drops a repeat), or, once disconnected, leaves it for the next connection.
  function deliver(item) {
    if (!confirmed || inFlight.has(item.id)) return;
    inFlight.add(item.id);
    socket.timeout(ACK_TIMEOUT_MS).emit("user_uttered",
      { message: item.text, session_id: sessionId, message_id: item.id }, (error, ack) => {
        inFlight.delete(item.id);
        if (!error && ack && ack.status === "no_session") {
          // The server doesn't know this connection's conversation (yet): ask again; the
          // confirmation sends what is waiting.
          socket.emit("session_request", { session_id: sessionId, session_token: sessionToken });
        } else if (!error && ack) {
          outbox = outbox.filter((waiting) => waiting.id !== item.id);
          save("outbox", outbox);
          const mark = queuedMarks.get(item.id);
          if (mark) { mark.remove(); queuedMarks.delete(item.id); }
        } else if (confirmed) {
          deliver(item);
        }  // else disconnected: it waits, marked, for the next connection
      });
  }

  function sendMessage(shown, payload) {
    const text = (shown || "").trim();
    if (!text) return;
    const item = { id: newMessageId(), text: payload || text };
    outbox.push(item);
    save("outbox", outbox);
    showMessage({ from: "user", text, id: item.id });
    if (confirmed) {
      setTyping(true);
      deliver(item);
    } else if (offline) {
      markQueued(item.id);
      showUnreachable();
    }  // else connecting: sent when the session is confirmed
  }

  function open() {
    panel.hidden = false;
    launcher.setAttribute("aria-expanded", "true");
    save("open", true);
    if (!socket) connect();
    input.focus();
  }

  function closePanel() {
    panel.hidden = true;
    launcher.setAttribute("aria-expanded", "false");
    save("open", false);
    launcher.focus();
  }

  launcher.addEventListener("click", () => (panel.hidden ? open() : closePanel()));
  close.addEventListener("click", closePanel);
  panel.addEventListener("keydown", (event) => { if (event.key === "Escape") closePanel(); });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    sendMessage(input.value);
    input.value = "";
  });

  for (const entry of history) showMessage(entry, false);
  if (load("open", false)) open();
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", createWidget);
else createWidget();
