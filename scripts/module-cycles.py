#!/usr/bin/env python3
"""Import graph of the top-level modules of a crate's src/ directory, and its cycles.

Usage: module-cycles.py SRC_DIR [--quiet]. An edge m -> x is a `crate::x` path in module m
(its file or directory), outside comments and outside its `#[cfg(test)] mod tests` block.
Prints every module's imports and each cycle (a strongly connected group of modules);
exits 1 when there is one.
"""
import os, re, sys
root = sys.argv[1]
mods = sorted({f[:-3] if f.endswith('.rs') else f for f in os.listdir(root)} - {'lib', 'main'})
mods = [m for m in mods if os.path.exists(os.path.join(root, m + '.rs')) or os.path.isdir(os.path.join(root, m))]
edges = {m: set() for m in mods}
pat = re.compile(r'crate::([a-z_][a-z0-9_]*)')
for m in mods:
    files = []
    if os.path.exists(os.path.join(root, m + '.rs')): files.append(os.path.join(root, m + '.rs'))
    d = os.path.join(root, m)
    if os.path.isdir(d):
        for dp, _, fs in os.walk(d):
            files += [os.path.join(dp, f) for f in fs if f.endswith('.rs')]
    for f in files:
        src = open(f).read()
        # drop #[cfg(test)] mod tests { ... } blocks roughly: cut at "#[cfg(test)]\nmod tests"
        i = src.find('#[cfg(test)]\nmod tests')
        if i >= 0: src = src[:i]
        src = re.sub(r'//[^\n]*', '', src)
        for t in pat.findall(src):
            if t in edges and t != m: edges[m].add(t)
# Tarjan SCC
idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
def sc(v):
    idx[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
    for w in edges[v]:
        if w not in idx: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], idx[w])
    if low[v] == idx[v]:
        comp = []
        while True:
            w = st.pop(); on.discard(w); comp.append(w)
            if w == v: break
        out.append(comp)
sys.setrecursionlimit(10000)
for v in mods:
    if v not in idx: sc(v)
quiet = '--quiet' in sys.argv
if not quiet:
    for m in mods: print(f"{m} -> {', '.join(sorted(edges[m]))}")
cyc = [sorted(x) for x in out if len(x) > 1]
print(f"{root}: {len(mods)} modules, {len(cyc)} import cycles")
for x in cyc: print(f"  cycle of {len(x)}: {' '.join(x)}")
sys.exit(1 if cyc else 0)
