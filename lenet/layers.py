"""The house's floor plan: every package of the project on its layer, lowest first.

An import may point to its own layer or below, never up, and the imports between modules
(lazy ones inside functions included) form no cycle. `tests/test_layers.py` checks both
with `check` below, so this list is the one place the order is written; docs/architecture.md
explains it.
"""
from __future__ import annotations

import ast
from pathlib import Path

LAYERS: tuple[tuple[str, ...], ...] = (
    # leaf helpers: the paper's constants and recipes, LENET_* settings, files, processes, device
    ("lenet.config", "lenet.errors", "lenet.settings", "lenet.files", "lenet.procs", "lenet.device", "lenet.layers"),
    ("lenet.ink",),        # glyph images: framing to 28x28, stroke normalisation
    ("lenet.data",),       # character sets: EMNIST, SD19, synthetic; the paper's splits
    ("lenet.kernels",),    # numba kernels of C1-S4 and the fused SGD steps
    ("lenet.core",),       # LeNet-5, target codes, transfer (freezing n levels), fit, Net, checkpoints
    ("lenet.drawing", "lenet.report"),  # canvas reading, Teach's drawings; figures, claims, HTML report
    ("lenet.grid",),       # the paper's grid of transfer runs: cells, fast path, run folders, reproduce
    ("lenet.studies",),    # the paper's open questions, each a function from settings to rows
    ("lenet.runtime", "lenet.classroom"),  # app-facing jobs and their store; the teacher, class codes, class sets
    ("lenet.cli", "lenet.bench", "lenet.__main__", "lenet"),  # entry points
    ("ui",),               # Streamlit glue shared by the pages
    ("app_pages", "app"),  # the pages and the app's navigation
)


def layer_of(module: str) -> int | None:
    """The layer index of a dotted module name, by its longest listed prefix (None: not listed).
    "lenet" stands for the package's own __init__ only, not for everything in it."""
    best, rank = -1, None
    for i, names in enumerate(LAYERS):
        for name in names:
            inside = module.startswith(name + ".") and name != "lenet"
            if (module == name or inside) and len(name) > best:
                best, rank = len(name), i
    return rank


def module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path, path: Path) -> set[str]:
    """Every project module `path` imports, anywhere in the file, as absolute dotted names."""
    me = module_name(root, path)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join(up + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from pkg import module`
    return found


def graph(root: Path, files: list[Path]) -> dict[str, set[str]]:
    """module -> the project modules it imports. Importing a.b.c also runs the packages a and a.b,
    so those count too, except the packages the importer itself lives in."""
    modules = {module_name(root, f): f for f in files}
    edges: dict[str, set[str]] = {}
    for name, f in modules.items():
        out = set()
        for target in imports(root, f):
            parts = target.split(".")
            for i in range(1, len(parts) + 1):
                t = ".".join(parts[:i])
                if t in modules and t != name and not name.startswith(t + "."):
                    out.add(t)
        edges[name] = out
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
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

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def check(root: Path, files: list[Path]) -> list[str]:
    """Every breach of the plan among `files` (paths under `root`), as readable lines; [] if none."""
    edges = graph(root, files)
    problems = []
    for name in sorted(edges):
        mine = layer_of(name)
        if mine is None:
            problems.append(f"{name}: not on any layer of lenet/layers.py")
            continue
        for t in sorted(edges[name]):
            theirs = layer_of(t)
            if theirs is not None and theirs > mine:
                problems.append(f"{name} imports {t}: upward ({LAYERS[mine][0]} is below {LAYERS[theirs][0]})")
    problems += ["import cycle: " + " <-> ".join(c) for c in cycles(edges)]
    return problems


def project_files(root: Path) -> list[Path]:
    return sorted([*root.glob("lenet/**/*.py"), *root.glob("ui/**/*.py"), *root.glob("app_pages/**/*.py"),
                   root / "app.py"])
