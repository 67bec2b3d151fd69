#!/usr/bin/env python3
"""Import cycles between the modules of each crate (issue 16).

For every crate of the workspace (a folder with Cargo.toml and src/), maps each source file
to its top-level module (`src/a.rs`, `src/a/…` -> `a`; `lib.rs`/`main.rs` -> the crate
root) and draws an edge a -> b when a file of `a` names `crate::b` (in a `use` or a path).
A strongly connected set of two or more modules is a cycle. Child modules naming their
parent (`super::`) stay inside one top-level module and are not edges; unit-test modules
(`#[cfg(test)] mod …`) are left out.

    scripts/module-cycles.py            # prints the cycles; exit status 1 if any
    scripts/module-cycles.py --edges    # also prints every crate's module graph
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
CRATE_PATH = re.compile(r"\bcrate::(\w+)")
USE_GROUP = re.compile(r"\buse\s+crate::\{([^;]*)\}", re.S)


def strip_comments(text):
    """The code without comments and without its `#[cfg(test)] mod …` (tests come last)."""
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = "\n".join(line.split("//", 1)[0] for line in text.splitlines())
    test = re.search(r"#\[cfg\(test\)\]\s*mod\s+\w+\s*\{", text)
    return text[: test.start()] if test else text


def modules_named(text):
    names = set(CRATE_PATH.findall(text))
    for group in USE_GROUP.findall(text):
        for part in group.split(","):
            head = part.strip().split("::", 1)[0].strip()
            if head and head not in ("self", "*"):
                names.add(head)
    return names


def top_module(src, path):
    rel = path.relative_to(src).parts
    if len(rel) == 1:
        stem = pathlib.Path(rel[0]).stem
        return None if stem in ("lib", "main") else stem
    return rel[0]


def sccs(nodes, edges):
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
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
            out.append(sorted(comp))

    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def main():
    show_edges = "--edges" in sys.argv
    cycles = 0
    for manifest in sorted(ROOT.glob("**/Cargo.toml")):
        src = manifest.parent / "src"
        if "target" in manifest.parts or not src.is_dir() or manifest.parent == ROOT:
            continue
        edges, nodes = {}, set()
        for f in sorted(src.rglob("*.rs")):
            m = top_module(src, f)
            if m is None:
                continue
            nodes.add(m)
            for n in modules_named(strip_comments(f.read_text(encoding="utf-8"))):
                if n != m:
                    edges.setdefault(m, set()).add(n)
        edges = {m: {n for n in ns if n in nodes} for m, ns in edges.items()}
        crate = manifest.parent.relative_to(ROOT)
        if show_edges:
            for m in sorted(edges):
                if edges[m]:
                    print(f"{crate}: {m} -> {', '.join(sorted(edges[m]))}")
        for comp in sccs(nodes, edges):
            if len(comp) > 1:
                cycles += 1
                print(f"{crate}: cycle between {', '.join(comp)}")
    if cycles == 0:
        print("no import cycles between the modules of any crate")
    return 1 if cycles else 0


if __name__ == "__main__":
    sys.exit(main())
