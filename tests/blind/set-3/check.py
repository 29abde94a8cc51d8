"""Checks for the blind set: YAML parses, counts, required keys, tiers,
no duplicate messages/questions, and no run of 8+ consecutive words shared
with the source texts (case and punctuation ignored)."""
import yaml, re, glob, collections, sys
SRC = glob.glob('/work/shared/articles/*.txt') + ['/work/shared/red-flags.md']
def words(t):
    t = t.lower().replace('\u2019', "'").replace('\u2014', ' ').replace('\u2013', ' ')
    t = re.sub(r"[^a-z0-9' ]+", ' ', t).replace("'", '')
    return t.split()
N = 8
grams = set()
for f in SRC:
    w = words(open(f, encoding='utf-8').read())
    grams |= {tuple(w[i:i+N]) for i in range(len(w)-N+1)}
ok = True
def overlap(s):
    w = words(s)
    return [' '.join(w[i:i+N]) for i in range(len(w)-N+1) if tuple(w[i:i+N]) in grams]
data = {}
for name, keys in [('faq.yml', ['question','fact','section']), ('red_flags.yml', ['message','tier','why']), ('offtopic.yml', ['message'])]:
    items = yaml.safe_load(open(name, encoding='utf-8'))
    assert isinstance(items, list)
    data[name] = items
    for it in items:
        assert set(it) == set(keys), (name, it)
        for k in keys:
            assert isinstance(it[k], str) and it[k].strip(), (name, it)
            if k == 'section':
                continue
            o = overlap(it[k])
            if o:
                ok = False; print('OVERLAP', name, k, repr(it[k][:70]), o[:2])
    print(name, len(items))
# raw file: every value double-quoted
for name in data:
    for line in open(name, encoding='utf-8'):
        m = re.match(r'^\s*-?\s*\w+: (.*)$', line.rstrip('\n'))
        if m and not m.group(1).startswith('"'):
            ok = False; print('UNQUOTED', name, line)
tiers = collections.Counter(i['tier'] for i in data['red_flags.yml'])
print(dict(tiers))
assert set(tiers) <= {'emergency','urgent','see_doctor','none'}
# duplicates across all message/question strings
norm = lambda s: ' '.join(words(s))
allt = [norm(i['question']) for i in data['faq.yml']] + [norm(i['message']) for i in data['red_flags.yml']] + [norm(i['message']) for i in data['offtopic.yml']]
d = [t for t, c in collections.Counter(allt).items() if c > 1]
if d: ok = False; print('DUPLICATES', d)
need = {'faq.yml': 230, 'offtopic.yml': 70}
for k, v in need.items():
    if len(data[k]) < v: ok = False; print('TOO FEW', k)
for t, v in {'emergency':170,'urgent':70,'see_doctor':50,'none':140}.items():
    if tiers[t] < v: ok = False; print('TOO FEW', t)
print('ALL CHECKS PASSED' if ok else 'CHECKS FAILED')
sys.exit(0 if ok else 1)
