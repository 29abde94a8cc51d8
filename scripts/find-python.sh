#!/usr/bin/env bash
# Prints the path of a Python 3.10 interpreter, or explains what to install.
# Rasa Open Source 3.6 supports Python 3.8-3.10 only, and pip on 3.11 silently
# picks an ancient Rasa 1.10, so we insist on 3.10.
# Order: $PYTHON, python3.10 on PATH, pyenv, then common install prefixes.
set -u

is_310() {
  [ -n "$1" ] && [ -x "$(command -v "$1" 2>/dev/null)" ] &&
    "$1" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 10) else 1)' 2>/dev/null
}

if [ -n "${PYTHON:-}" ]; then
  if is_310 "$PYTHON"; then command -v "$PYTHON"; exit 0; fi
  echo "PYTHON is set to '$PYTHON', which is not a Python 3.10 interpreter (Rasa 3.6 needs 3.10)." >&2
  exit 1
fi
candidates=()
candidates+=(python3.10)
if command -v pyenv >/dev/null 2>&1; then
  root=$(pyenv root 2>/dev/null)
  for d in "$root"/versions/3.10*; do
    [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10")
  done
fi
for d in "$HOME"/.pyenv/versions/3.10* /usr/local/bin /usr/bin /opt/homebrew/bin; do
  [ -x "$d/python3.10" ] && candidates+=("$d/python3.10")
  [ -x "$d/bin/python3.10" ] && candidates+=("$d/bin/python3.10")
done

for c in "${candidates[@]}"; do
  if is_310 "$c"; then
    command -v "$c"
    exit 0
  fi
done

cat >&2 <<'MSG'
Python 3.10 is required (Rasa Open Source 3.6 does not run on newer Pythons) and none was found.
Install it, for example with `pyenv install 3.10` or your system's python3.10 package,
or point PYTHON at one: `make run PYTHON=/path/to/python3.10`.
MSG
exit 1
