#!/usr/bin/env python3
"""Validate the blind test set in this directory (faq.yml, red_flags.yml, offtopic.yml)."""
import glob, os, re, sys
from collections import Counter
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCES = sorted(glob.glob('/work/shared/articles/*.txt')) + ['/work/shared/red-flags.md']
N = 8
errors = []

def err(msg):
    errors.append(msg)

def words(text):
    t = text.lower().replace('\u2019', '').replace('\u2018', '').replace("'", '')
    t = re.sub(r'[^a-z0-9]+', ' ', t)
    return t.split()

def norm(text):
    return ' '.join(words(text))

# 1. raw format: every value double-quoted, one key per line
LINE = re.compile(r'^(?:- |  )([a-z_]+): "((?:[^"\\]|\\.)*)"$')
for name in ['faq.yml', 'red_flags.yml', 'offtopic.yml']:
    with open(os.path.join(HERE, name), encoding='utf-8') as f:
        for i, line in enumerate(f, 1):
            line = line.rstrip('\n')
            if not line.strip():
                continue
            if not LINE.match(line):
                err(f'{name}:{i}: value not double-quoted or malformed: {line[:80]}')

# 2. parse
data = {}
for name in ['faq.yml', 'red_flags.yml', 'offtopic.yml']:
    with open(os.path.join(HERE, name), encoding='utf-8') as f:
        d = yaml.safe_load(f)
    if not isinstance(d, list):
        err(f'{name}: top level is not a list')
        d = []
    data[name] = d

KEYS = {'faq.yml': {'question', 'fact', 'section'},
        'red_flags.yml': {'message', 'tier', 'why'},
        'offtopic.yml': {'message'}}
for name, items in data.items():
    for i, it in enumerate(items):
        if not isinstance(it, dict) or set(it) != KEYS[name]:
            err(f'{name} item {i}: keys {sorted(it) if isinstance(it, dict) else type(it)} != {sorted(KEYS[name])}')
            continue
        for k, v in it.items():
            if not isinstance(v, str) or not v.strip():
                err(f'{name} item {i}: {k} empty or not a string')

# 3. tiers and counts
TIERS = {'emergency', 'urgent', 'see_doctor', 'none'}
tiers = Counter()
for i, it in enumerate(data['red_flags.yml']):
    t = it.get('tier') if isinstance(it, dict) else None
    if t not in TIERS:
        err(f'red_flags.yml item {i}: bad tier {t!r}')
    tiers[t] += 1
counts = {'faq': len(data['faq.yml']), 'offtopic': len(data['offtopic.yml']),
          **{t: tiers[t] for t in sorted(TIERS)}}
MIN = {'faq': 240, 'offtopic': 75, 'emergency': 180, 'urgent': 75, 'see_doctor': 55, 'none': 150}
for k, m in MIN.items():
    if counts[k] < m:
        err(f'count {k}={counts[k]} < {m}')

# 4. duplicates across all files
seen = {}
for name, items in data.items():
    key = 'question' if name == 'faq.yml' else 'message'
    for i, it in enumerate(items):
        if not isinstance(it, dict) or key not in it:
            continue
        n = norm(it[key])
        if n in seen:
            err(f'duplicate: {name} item {i} == {seen[n]}: {it[key][:60]}')
        else:
            seen[n] = f'{name} item {i}'

# 5. no 8-word run shared with the sources (all values checked)
src_grams = set()
for p in SOURCES:
    w = words(open(p, encoding='utf-8').read())
    src_grams.update(tuple(w[j:j + N]) for j in range(len(w) - N + 1))
for name, items in data.items():
    for i, it in enumerate(items):
        if not isinstance(it, dict):
            continue
        for k, v in it.items():
            w = words(str(v))
            for j in range(len(w) - N + 1):
                if tuple(w[j:j + N]) in src_grams:
                    err(f'{name} item {i} {k}: shares 8-word run with sources: "{" ".join(w[j:j + N])}"')
                    break

print('counts:', ', '.join(f'{k}={v}' for k, v in counts.items()))
if errors:
    for e in errors:
        print('FAIL', e)
    print(f'{len(errors)} problem(s)')
    sys.exit(1)
print('ALL CHECKS PASSED')
