#!/usr/bin/env bash
# Checks that no crate has a module cycle: every dependency between modules is parent–child or one-way.
#
# For each crate root (src/lib.rs, src/main.rs) it follows `mod` declarations (with `#[path]`), reads the
# `crate::`, `super::` and `self::` paths of every file (comments stripped), and resolves each to the
# longest known module. An edge between two modules that are not ancestor and descendant becomes an edge
# between the two sibling modules under their lowest common ancestor; each set of siblings must form an
# acyclic graph. Test-only code (`#[cfg(test)]` modules, inline or in files) is left out unless
# `--with-tests` is given: a test reusing another module's fixture is not part of the design. With
# `--graph` it also prints each crate's top-level module graph.
#
# Usage: scripts/module-cycles.sh [--graph] [--with-tests] [crate-dir ...]
#        (default crates: activator autoscaler operator)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python3 - "$@" <<'PY'
import os, re, sys

args = sys.argv[1:]
show_graph = "--graph" in args
with_tests = "--with-tests" in args
crates = [a for a in args if not a.startswith("--")] or ["activator", "autoscaler", "operator"]

COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.S)
STRING = re.compile(r'r#*"(?:.|\n)*?"#*|"(?:\\.|[^"\\])*"')
MOD_DECL = re.compile(r'((?:#\[[^\]]*\]\s*)*)(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;')
PATH_ATTR = re.compile(r'#\[path\s*=\s*"([^"]+)"\]')
TEST_ATTR = re.compile(r'#\[cfg\(test\)\]')
INLINE_TEST_MOD = re.compile(r'#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{')


def strip_inline_tests(src):
    """Removes `#[cfg(test)] mod name { ... }` blocks (braces matched)."""
    while True:
        m = INLINE_TEST_MOD.search(src)
        if not m:
            return src
        depth, i = 1, m.end()
        while i < len(src) and depth:
            depth += {"{": 1, "}": -1}.get(src[i], 0)
            i += 1
        src = src[: m.start()] + src[i:]
PATH_START = re.compile(r"\b(crate|super|self)::")


def strip(src):
    src = COMMENT.sub("", src)
    return STRING.sub('""', src)


def parse_tree(text, i):
    """Parses a use tree at text[i:]; returns (list of paths as lists of segments, end index)."""
    segs = []
    while True:
        m = re.compile(r"\s*(\w+|\*)").match(text, i)
        if m and not text.startswith("{", m.start(1)):
            segs.append(m.group(1))
            i = m.end()
            m2 = re.compile(r"\s*::\s*").match(text, i)
            if m2:
                i = m2.end()
                if text.startswith("{", i):
                    break
                continue
            return [segs], i
        break
    if not text.startswith("{", i):
        return [segs], i
    i += 1
    paths = []
    while True:
        m = re.compile(r"\s*").match(text, i)
        i = m.end()
        if text.startswith("}", i):
            return paths or [segs], i + 1
        sub, i = parse_tree(text, i)
        paths += [segs + s for s in sub]
        m = re.compile(r"\s*(?:as\s+\w+\s*)?,?").match(text, i)
        i = m.end()


def analyse(crate_dir, root_file):
    files = {}  # module path (tuple) -> file

    def read(path):
        src = strip(open(path).read())
        return src if with_tests else strip_inline_tests(src)

    def walk(module, path):
        files[module] = path
        src = read(path)
        base = os.path.dirname(path)
        stem = os.path.splitext(os.path.basename(path))[0]
        if stem not in ("lib", "main", "mod"):
            base = os.path.join(base, stem)
        for m in MOD_DECL.finditer(src):
            attrs, name = m.group(1), m.group(2)
            if TEST_ATTR.search(attrs) and not with_tests:
                continue
            explicit = PATH_ATTR.search(attrs)
            explicit = explicit.group(1) if explicit else None
            if explicit:
                child = os.path.join(os.path.dirname(path), explicit)
            else:
                child = os.path.join(base, name + ".rs")
                if not os.path.exists(child):
                    child = os.path.join(base, name, "mod.rs")
            if os.path.exists(child):
                walk(module + (name,), child)

    walk((), root_file)
    modules = set(files)
    edges = set()
    for module, path in files.items():
        src = read(path)
        for m in PATH_START.finditer(src):
            kind = m.group(1)
            for segs in parse_tree(src, m.end())[0]:
                if kind == "crate":
                    target = ()
                elif kind == "super":
                    target = module[:-1]
                    while segs and segs[0] == "super":
                        target, segs = target[:-1], segs[1:]
                else:
                    target = module
                for s in segs:
                    if target + (s,) in modules:
                        target = target + (s,)
                    else:
                        break
                if target != module:
                    edges.add((module, target))
    return modules, edges


def sibling_edges(edges):
    graphs = {}
    for a, b in edges:
        n = 0
        while n < min(len(a), len(b)) and a[n] == b[n]:
            n += 1
        if n == len(a) or n == len(b):
            continue  # ancestor and descendant
        graphs.setdefault(a[:n], set()).add((a[n], b[n]))
    return graphs


def cycles(graph_edges):
    """Strongly connected components with more than one module (Tarjan), each sorted."""
    adj = {}
    for a, b in graph_edges:
        adj.setdefault(a, set()).add(b)
        adj.setdefault(b, set())
    index, low, on, stack, out = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(adj[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(adj):
        if v not in index:
            visit(v)
    return out


failed = False
for crate in crates:
    for root in ("src/lib.rs", "src/main.rs"):
        root_file = os.path.join(crate, root)
        if not os.path.exists(root_file):
            continue
        modules, edges = analyse(crate, root_file)
        graphs = sibling_edges(edges)
        if show_graph:
            print(f"{root_file}: top-level module graph")
            for a, b in sorted(graphs.get((), ())):
                print(f"  {a} -> {b}")
        bad = 0
        for parent, g in sorted(graphs.items()):
            for comp in cycles(g):
                bad += 1
                where = "::".join(parent) or "crate"
                inner = sorted(f"{a} -> {b}" for a, b in g if a in comp and b in comp)
                print(f"{root_file}: cycle under {where} among {', '.join(comp)}: {'; '.join(inner)}")
        if bad:
            failed = True
        else:
            print(f"{root_file}: {len(modules)} modules, no cycle")
sys.exit(1 if failed else 0)
PY
