"""Validate the blind test set in this directory.

Checks: YAML loads; required fields and types; tier values; minimum counts;
no repeated text (exact or after lower-casing and collapsing punctuation);
no run of 10+ consecutive words shared between any text/fact and an article.
Exit code 0 when everything passes.
"""
import glob
import os
import re
import sys
from collections import Counter

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ARTICLES = sorted(glob.glob("/work/shared/articles/*.txt"))
NGRAM = 10
TIERS = {"emergency", "urgent", "see_doctor", "none"}
MIN_TIER = {"emergency": 200, "urgent": 80, "see_doctor": 60, "none": 200}
MIN_FAQ = 260
MIN_OFF = 100

errors = []


def err(msg):
    errors.append(msg)


def load(name):
    path = os.path.join(HERE, name)
    with open(path, encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, list):
        err(f"{name}: top level is not a list")
        return []
    return data


def words(text):
    text = text.lower().replace("\u2019", "'")
    text = re.sub(r"[^a-z0-9']+", " ", text)
    return [w.strip("'") for w in text.split() if w.strip("'")]


def norm(text):
    return " ".join(words(text))


def check_fields(name, items, spec):
    good = []
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            err(f"{name}[{i}]: not a mapping")
            continue
        keys = set(it)
        if keys != set(spec):
            err(f"{name}[{i}]: keys {sorted(keys)} != {sorted(spec)}")
        ok = True
        for k in spec:
            v = it.get(k)
            if not isinstance(v, str) or not v.strip():
                err(f"{name}[{i}]: field {k!r} missing or empty")
                ok = False
        if ok:
            good.append(it)
    return good


faq = check_fields("faq.yml", load("faq.yml"), ["question", "fact", "section"])
red = check_fields("red_flags.yml", load("red_flags.yml"), ["message", "tier", "why"])
off = check_fields("offtopic.yml", load("offtopic.yml"), ["message"])

# tiers and counts
tier_counts = Counter()
for i, it in enumerate(red):
    if it["tier"] not in TIERS:
        err(f"red_flags.yml[{i}]: bad tier {it['tier']!r}")
    tier_counts[it["tier"]] += 1
for t, n in MIN_TIER.items():
    if tier_counts[t] < n:
        err(f"red_flags.yml: tier {t} has {tier_counts[t]} < {n}")
if len(faq) < MIN_FAQ:
    err(f"faq.yml: {len(faq)} < {MIN_FAQ}")
if len(off) < MIN_OFF:
    err(f"offtopic.yml: {len(off)} < {MIN_OFF}")

# no repeated texts across all three files (user-facing texts)
texts = [("faq.yml", it["question"]) for it in faq]
texts += [("red_flags.yml", it["message"]) for it in red]
texts += [("offtopic.yml", it["message"]) for it in off]
seen = {}
for src, t in texts:
    for key in (t.strip(), "N:" + norm(t)):
        if key in seen:
            err(f"repeated text in {src} (also in {seen[key]}): {t[:60]!r}")
            break
    else:
        seen[t.strip()] = src
        seen["N:" + norm(t)] = src
# facts must not repeat either
fact_seen = Counter(norm(it["fact"]) for it in faq)
for f, n in fact_seen.items():
    if n > 1:
        err(f"faq.yml: fact repeated {n} times: {f[:60]!r}")

# shared 10-word runs with the articles
art_grams = set()
for path in ARTICLES:
    with open(path, encoding="utf-8") as fh:
        w = words(fh.read())
    for j in range(len(w) - NGRAM + 1):
        art_grams.add(tuple(w[j:j + NGRAM]))
if not ARTICLES:
    err("no articles found")

checked = [("faq.yml question", it["question"]) for it in faq]
checked += [("faq.yml fact", it["fact"]) for it in faq]
checked += [("faq.yml section", it["section"]) for it in faq]
checked += [("red_flags.yml message", it["message"]) for it in red]
checked += [("red_flags.yml why", it["why"]) for it in red]
checked += [("offtopic.yml message", it["message"]) for it in off]
overlaps = 0
for src, t in checked:
    w = words(t)
    for j in range(len(w) - NGRAM + 1):
        if tuple(w[j:j + NGRAM]) in art_grams:
            overlaps += 1
            err(f"{src}: shares a {NGRAM}-word run with an article: {' '.join(w[j:j + NGRAM])!r}")
            break

print(f"faq.yml: {len(faq)} questions")
print("red_flags.yml: " + ", ".join(f"{t}={tier_counts[t]}" for t in
                                    ["emergency", "urgent", "see_doctor", "none"])
      + f" (total {len(red)})")
print(f"offtopic.yml: {len(off)} messages")
print(f"texts with a {NGRAM}+ word run shared with an article: {overlaps}")
if errors:
    print(f"\nFAILED with {len(errors)} problem(s):")
    for e in errors:
        print(" -", e)
    sys.exit(1)
print("OK: all checks passed")
