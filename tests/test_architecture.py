"""The house's structure: one dependency direction, imports at the top, the recipe written once.

These read the source (``ast``), so they fail on the commit that breaks a rule, not on the day it bites.
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "helpers"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> list[str]:
    """The package modules a ``from ... import ...`` statement loads (relative or absolute)."""
    if node.level:
        base = importer.split(".")
        base = base[: len(base) - node.level + (1 if is_package else 0)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    if not target.startswith("helpers"):
        return []
    names = [f"{target}.{alias.name}" for alias in node.names]
    return [target] + [n for n in names if n in GRAPH_NAMES]


GRAPH_NAMES = {module_name(p) for p in MODULES}


def import_graph(top_level_only: bool = True) -> dict[str, set[str]]:
    """Module -> package modules it imports when it is imported (statements at module level)."""
    graph = {}
    for path in MODULES:
        name, tree = module_name(path), ast.parse(path.read_text())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        edges = set()
        for node in nodes:
            if isinstance(node, ast.ImportFrom):
                edges.update(resolve(name, path.name == "__init__.py", node))
            elif isinstance(node, ast.Import):
                edges.update(a.name for a in node.names if a.name.startswith("helpers"))
        graph[name] = {e for e in edges if e in GRAPH_NAMES and e != name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules, or None (depth-first search)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_package_modules():
    """Counting imports inside functions too: a late import must not hide a circle."""
    graph = import_graph(top_level_only=False)
    for name in graph:   # a package's __init__ importing its own modules is not a cycle
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def imports_inside_functions(path: Path) -> list[tuple[int, str]]:
    tree, lines = ast.parse(path.read_text()), path.read_text().splitlines()
    found = []
    for func in ast.walk(tree):
        if isinstance(func, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in ast.walk(func):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    found.append((node.lineno, lines[node.lineno - 1].strip()))
    return found


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_sit_at_the_top_unless_a_comment_says_why(path):
    """A deferred import (an optional or slow dependency) carries a comment saying why, on its line."""
    unexplained = [f"line {n}: {text}" for n, text in imports_inside_functions(path) if "#" not in text]
    assert not unexplained, f"{path.name}: move these imports to the top or say why they wait: {unexplained}"


RECIPE_NAMES = r"(momentum|lr_decay|head_lr_mult|bias_lr_mult|weight_decay|finetune_lr|scratch_lr)"
RECIPE_LITERAL = re.compile(RECIPE_NAMES + r"\s*(:\s*float\s*)?=\s*[0-9.]+(e-?\d+)?\b")
DECAY_LITERAL = re.compile(r"\b0\.95\s*\*\*")


def code_sources() -> dict[str, str]:
    """Every package module and every notebook's code cells, by path."""
    out = {str(p.relative_to(ROOT)): p.read_text() for p in MODULES}
    for nb in sorted((ROOT / "notebooks").glob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        out[str(nb.relative_to(ROOT))] = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return out


def test_the_recipe_literal_finder_finds_one():
    assert RECIPE_LITERAL.search("opt = SGD(p, momentum=0.9)") and RECIPE_LITERAL.search("weight_decay: float = 5e-4")
    assert DECAY_LITERAL.search("lr * 0.95 ** (steps / 20)")
    assert not RECIPE_LITERAL.search("momentum=PAPER.momentum")


def test_the_recipe_numbers_are_written_in_one_module():
    """momentum, the rate decay, the head and bias multiples, weight decay and the default rates live in
    helpers/recipe.py; everything else (engine, sweeps, detection, notebooks) reads them from there.
    (A scratch run's head multiple of 1 is written as ``head_lr_mult=1.0`` in notebook 02 on purpose.)"""
    offenders = []
    for name, text in code_sources().items():
        if name == "helpers/recipe.py":
            continue
        for line in text.splitlines():
            if DECAY_LITERAL.search(line) or (RECIPE_LITERAL.search(line) and "head_lr_mult=1.0" not in line):
                offenders.append(f"{name}: {line.strip()}")
    assert not offenders, "recipe numbers outside helpers/recipe.py:\n" + "\n".join(offenders)


APPLICATIONS = ("helpers.detection", "helpers.segmentation", "helpers.applications")


def test_the_core_does_not_import_the_applications():
    """helpers.detection builds on the core, helpers.segmentation on detection and the core, helpers.applications
    (finding 3 across applications) on all of them; only preflight (which looks for notebook 05's folder)
    reaches back from the core, and detection never imports segmentation."""
    graph = import_graph(top_level_only=False)
    reaching = sorted(m for m, edges in graph.items()
                      if not m.startswith(APPLICATIONS) and m != "helpers.preflight"
                      and any(e.startswith(APPLICATIONS) for e in edges))
    assert not reaching, f"core modules importing an application: {reaching}"
    backwards = sorted(m for m, edges in graph.items() if m.startswith("helpers.detection")
                       and any(e.startswith(("helpers.segmentation", "helpers.applications")) for e in edges))
    assert not backwards, f"detection modules importing segmentation: {backwards}"


def test_no_module_reaches_into_another_modules_private_names():
    """A name starting with one underscore is its module's own: no other module of the package imports it or
    reads it through the module (``from .analysis import _x`` or ``analysis._x``)."""
    offences = []
    for path in MODULES:
        name, tree = module_name(path), ast.parse(path.read_text())
        aliases = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                targets = resolve(name, path.name == "__init__.py", node)
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__") and targets:
                        offences.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {alias.name}")
                    if f"{targets[0]}.{alias.name}" in GRAPH_NAMES if targets else False:
                        aliases.add(alias.asname or alias.name)
            elif isinstance(node, ast.Import):
                aliases.update((a.asname or a.name) for a in node.names if a.name.startswith("helpers"))
        for node in ast.walk(tree):
            if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                    and node.attr.startswith("_") and not node.attr.startswith("__")):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} reads {node.value.id}.{node.attr}")
    assert not offences, "private names used across modules:\n" + "\n".join(offences)
