"""Checks that the modules of a Rust crate do not import each other in a circle.

    python3 scripts/module_cycles.py src service-restart/src crates/handler-kit/src ...

For each source directory: a top-level module is a file `x.rs` (with `x/` beside it as its
children) or a directory `x/mod.rs`; `main.rs` and `lib.rs` are the root and left out. Module
A depends on B when any file of A names `crate::B` (in a `use`, a group `use crate::{B, ..}`,
or a path). Test code does not count: files named `tests.rs` or under a `tests/` directory,
and everything from a `#[cfg(test)]` line to the end of the file (where Rust code keeps its
test module). Prints each crate's dependency graph and every cycle (strongly connected
component of more than one module); exits 1 if any crate has one.
"""

import re
import sys
from pathlib import Path

GROUP = re.compile(r"\bcrate::\{([^}]*)\}", re.S)
SINGLE = re.compile(r"\bcrate::([a-z_][a-z0-9_]*)")
NESTED_ITEM = re.compile(r"^\s*([a-z_][a-z0-9_]*)")


def production_text(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    cut = re.search(r"^\s*#\[cfg\(test\)\]", text, re.M)
    return text[: cut.start()] if cut else text


def top_module(src: Path, path: Path):
    parts = path.relative_to(src).parts
    if "tests" in parts[:-1] or parts[-1] == "tests.rs":
        return None
    first = parts[0]
    name = first[:-3] if first.endswith(".rs") else first
    return None if name in ("main", "lib") else name


def graph(src: Path):
    modules = {}
    for path in sorted(src.rglob("*.rs")):
        module = top_module(src, path)
        if module is None:
            continue
        deps = modules.setdefault(module, set())
        text = production_text(path)
        for group in GROUP.findall(text):
            for item in group.split(","):
                match = NESTED_ITEM.match(item)
                if match:
                    deps.add(match.group(1))
        deps.update(SINGLE.findall(text))
    known = set(modules)
    return {m: sorted(d & known - {m}) for m, d in modules.items()}


def cycles(edges):
    """Tarjan's strongly connected components; those of more than one module."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main(argv):
    if not argv:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    failed = []
    for arg in argv:
        src = Path(arg)
        edges = graph(src)
        found = cycles(edges)
        print(f"{src}: {len(edges)} modules")
        for module, deps in sorted(edges.items()):
            print(f"  {module} -> {', '.join(deps) if deps else '(nothing)'}")
        if found:
            failed.append(arg)
            for component in found:
                print(f"  CYCLE: {' <-> '.join(component)}")
        else:
            print("  no cycles")
    if failed:
        print(f"module cycles in {', '.join(failed)} (of {len(argv)} crates)")
        return 1
    print(f"module graphs: {len(argv)} crates, no cycles")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
