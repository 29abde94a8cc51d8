#!/usr/bin/env python3
"""Format check for the blind6 test set (standard library + PyYAML only)."""
import os, sys, collections
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TIERS = ("emergency", "urgent", "see_doctor", "none")
MIN_TIER = {"emergency": 200, "urgent": 80, "see_doctor": 60, "none": 180}
MIN_FAQ, MIN_OFF = 320, 90
errors = []

def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as fh:
        data = yaml.safe_load(fh)
    if not isinstance(data, list):
        errors.append(f"{name}: top level is not a list")
        return []
    return data

def check_items(name, items, keys):
    for i, it in enumerate(items):
        if not isinstance(it, dict) or set(it) != set(keys):
            errors.append(f"{name}[{i}]: expected exactly keys {sorted(keys)}, got {it!r}")
            continue
        for k in keys:
            if not isinstance(it[k], str) or not it[k].strip():
                errors.append(f"{name}[{i}].{k}: empty or not a string")

def norm(s):
    return " ".join(str(s).lower().split())

faq = load("faq.yml")
rf = load("red_flags.yml")
off = load("offtopic.yml")
check_items("faq.yml", faq, ("question", "fact", "section"))
check_items("red_flags.yml", rf, ("message", "tier", "why"))
check_items("offtopic.yml", off, ("message",))

tiers = collections.Counter()
for i, it in enumerate(rf):
    if isinstance(it, dict):
        if it.get("tier") not in TIERS:
            errors.append(f"red_flags.yml[{i}]: bad tier {it.get('tier')!r}")
        tiers[it.get("tier")] += 1

if len(faq) < MIN_FAQ:
    errors.append(f"faq.yml: {len(faq)} items < {MIN_FAQ}")
if len(off) < MIN_OFF:
    errors.append(f"offtopic.yml: {len(off)} items < {MIN_OFF}")
for t, n in MIN_TIER.items():
    if tiers[t] < n:
        errors.append(f"red_flags.yml: {tiers[t]} {t} < {n}")

# duplicates within each file and across all three files
texts = collections.defaultdict(list)
for name, items, key in (("faq.yml", faq, "question"), ("red_flags.yml", rf, "message"),
                         ("offtopic.yml", off, "message")):
    for i, it in enumerate(items):
        if isinstance(it, dict) and isinstance(it.get(key), str):
            texts[norm(it[key])].append(f"{name}[{i}]")
for t, where in texts.items():
    if len(where) > 1:
        errors.append(f"duplicate message {t[:60]!r} at {', '.join(where)}")

print(f"faq.yml:       {len(faq)} questions")
print(f"red_flags.yml: {len(rf)} messages  " + ", ".join(f"{t}={tiers[t]}" for t in TIERS))
print(f"offtopic.yml:  {len(off)} messages")
if errors:
    print(f"\n{len(errors)} problem(s):")
    for e in errors:
        print("  -", e)
    sys.exit(1)
print("OK: format, tiers, minimum counts and uniqueness all pass")
