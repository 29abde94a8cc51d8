"""`make reload`: puts the freshly trained model into the running assistant.

`make reload` first checks the data and clinic settings and retrains if
something changed; this script then asks the Rasa server that `make run`
started to load models/sciatica.tar.gz (Rasa's `PUT /model`), so conversations,
the action server and the widget carry on without a restart. The server's HTTP
API is protected by a token: RASA_API_TOKEN, or the one `make run` generated in
var/api-token.

Usage: python scripts/reload_model.py [--url http://localhost:5005]
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "models" / "sciatica.tar.gz"
TOKEN_FILE = ROOT / "var" / "api-token"


def api_token() -> str:
    token = os.environ.get("RASA_API_TOKEN", "").strip()
    if not token and TOKEN_FILE.exists():
        token = TOKEN_FILE.read_text().strip()
    return token


def call(method: str, url: str, token: str, body: dict = None, timeout: float = 300):
    query = "?" + urllib.parse.urlencode({"token": token}) if token else ""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url + query, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        raw = response.read()
        return json.loads(raw) if raw else None


def reload(url: str, model: Path = MODEL, token: str = None) -> int:
    token = api_token() if token is None else token
    url = url.rstrip("/")
    try:
        before = call("GET", f"{url}/status", token, timeout=10)
    except urllib.error.HTTPError as error:
        if error.code in (401, 403):
            print(f"The assistant at {url} refused the API token (HTTP {error.code}). Set RASA_API_TOKEN to the "
                  "token it was started with, or restart it with `make run`.", file=sys.stderr)
        else:
            print(f"The assistant at {url} answered HTTP {error.code} to a status request: is its HTTP API on? "
                  "`make run` turns it on; restart it with `make run`.", file=sys.stderr)
        return 1
    except OSError:
        print(f"The assistant is not running at {url}, so there is nothing to reload. "
              "`make run` starts it with the new model.")
        return 0
    if not model.exists():
        print(f"No trained model at {model}; run `make reload` (it trains first).", file=sys.stderr)
        return 1
    print(f"Loading {model.relative_to(ROOT)} into the assistant at {url} (about half a minute) ...", flush=True)
    try:
        call("PUT", f"{url}/model", token, {"model_file": str(model.resolve())})
        after = call("GET", f"{url}/status", token, timeout=10)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:500]
        print(f"The assistant could not load the model (HTTP {error.code}): {detail}\n"
              "It keeps answering with the previous model.", file=sys.stderr)
        return 1
    changed = "a new model" if after.get("model_id") != (before or {}).get("model_id") else "the same model again"
    print(f"Reloaded: the assistant now answers with {changed} (model id {after.get('model_id')}). "
          "Conversations carry on; try your change in the widget or with `make shell`.")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=f"http://localhost:{os.environ.get('RASA_PORT', '5005')}",
                        help="the running assistant (default: http://localhost:5005)")
    args = parser.parse_args(argv)
    return reload(args.url)


if __name__ == "__main__":
    sys.exit(main())
