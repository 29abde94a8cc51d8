#!/usr/bin/env python3
"""Validate the blind test set in this directory (faq.yml, red_flags.yml, offtopic.yml).

Checks: line format, YAML parse, keys per item, tiers, minimum counts, duplicates
(after lowercasing and stripping punctuation) across all files. Prints counts.
Exit status 0 if everything passes, 1 otherwise.
"""
import os
import re
import string
import sys

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
LINE_RE = re.compile(r'^(?:- |  )([a-z_]+): "((?:[^"\\]|\\.)*)"$')

SPEC = {
    "faq.yml": ["question", "fact", "section"],
    "red_flags.yml": ["message", "tier", "why"],
    "offtopic.yml": ["message"],
}
TEXT_KEY = {"faq.yml": "question", "red_flags.yml": "message", "offtopic.yml": "message"}
TIERS = ("emergency", "urgent", "see_doctor", "none")
MINIMUM = {
    "faq": 300,
    "emergency": 200,
    "urgent": 80,
    "see_doctor": 60,
    "none": 170,
    "offtopic": 80,
}

errors = []


def err(msg):
    errors.append(msg)


def normalise(text):
    text = text.lower()
    text = "".join(ch for ch in text if ch not in string.punctuation and ch not in "\u2019\u2018\u201c\u201d")
    return " ".join(text.split())


def check_lines(name):
    path = os.path.join(HERE, name)
    with open(path, encoding="utf-8") as fh:
        lines = fh.read().split("\n")
    expected = SPEC[name]
    pos = 0  # index into expected keys for the current item
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        m = LINE_RE.match(line)
        if not m:
            err(f"{name}:{no}: line does not match the required format: {line!r}")
            continue
        key = m.group(1)
        starts_item = line.startswith("- ")
        if starts_item:
            if pos not in (0, len(expected)):
                err(f"{name}:{no}: previous item is missing keys {expected[pos:]}")
            pos = 0
        if pos >= len(expected):
            err(f"{name}:{no}: unexpected extra key {key!r}")
            continue
        if key != expected[pos]:
            err(f"{name}:{no}: expected key {expected[pos]!r}, got {key!r}")
        if starts_item and pos != 0:
            err(f"{name}:{no}: item must start with {expected[0]!r}")
        pos += 1
    if pos not in (0, len(expected)):
        err(f"{name}: last item is missing keys {expected[pos:]}")


def load(name):
    path = os.path.join(HERE, name)
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        err(f"{name}: YAML does not parse: {str(exc).splitlines()[0]}")
        return []
    if not isinstance(data, list):
        err(f"{name}: top level is not a list")
        return []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            err(f"{name}: item {i} is not a mapping")
            continue
        if list(item.keys()) != SPEC[name]:
            err(f"{name}: item {i} has keys {list(item.keys())}, expected {SPEC[name]}")
        for k, v in item.items():
            if not isinstance(v, str) or not v.strip():
                err(f"{name}: item {i} key {k!r} is empty or not a string")
    return data


def main():
    data = {}
    for name in SPEC:
        if not os.path.exists(os.path.join(HERE, name)):
            err(f"missing file {name}")
            continue
        check_lines(name)
        data[name] = load(name)

    counts = {k: 0 for k in MINIMUM}
    counts["faq"] = len(data.get("faq.yml", []))
    counts["offtopic"] = len(data.get("offtopic.yml", []))
    for i, item in enumerate(data.get("red_flags.yml", [])):
        tier = item.get("tier") if isinstance(item, dict) else None
        if tier not in TIERS:
            err(f"red_flags.yml: item {i} has invalid tier {tier!r}")
            continue
        counts[tier] += 1

    seen = {}
    for name, items in data.items():
        for i, item in enumerate(items):
            if not isinstance(item, dict):
                continue
            text = item.get(TEXT_KEY[name], "")
            key = normalise(text)
            if key in seen:
                err(f"duplicate: {name} item {i} {text!r} == {seen[key][0]} item {seen[key][1]}")
            else:
                seen[key] = (name, i)

    for k, minimum in MINIMUM.items():
        if counts[k] < minimum:
            err(f"count for {k} is {counts[k]}, below the minimum {minimum}")

    print("counts:")
    for k in MINIMUM:
        print(f"  {k:11s} {counts[k]:4d}  (minimum {MINIMUM[k]})")
    print(f"  {'total':11s} {sum(counts.values()):4d}")
    if errors:
        print(f"\nFAILED with {len(errors)} error(s):")
        for e in errors:
            print("  " + e)
        return 1
    print("\nOK: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
