"""Imports point down the layers of ``vqe.layers.LAYERS`` and never form a cycle.

Every ``import`` / ``from … import`` in ``vqe/**/*.py`` counts, at module level or inside a
function (a hidden import is still a dependency), relative ones resolved. An edge from a lower
layer to a higher one fails, and so does any import cycle between modules or between units
(sub-packages and top-level modules), unless the edge is in :data:`KNOWN_UPWARD_EDGES` — a
short, named list of debts, each with the reason it is still there. A new upward edge or cycle
fails this test; removing a debt means deleting its entry (a stale entry fails too).
"""

from __future__ import annotations

import ast
import re
from collections import defaultdict
from pathlib import Path

from vqe.layers import LAYERS, layer_of, unit_of

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "vqe"

#: (importer, imported) module pairs allowed to point up, each with why it is still there.
KNOWN_UPWARD_EDGES: dict[tuple[str, str], str] = {}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES: dict[str, Path] = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str) -> str | None:
    """The module of ``vqe`` a dotted name refers to (``vqe.a.b.NAME`` → ``vqe.a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(module: str) -> set[str]:
    """The vqe modules ``module`` imports, anywhere in its file."""
    path = MODULES[module]
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                stem = ".".join([*base, node.module] if node.module else base)
            else:
                stem = node.module or ""
            targets = [f"{stem}.{alias.name}" for alias in node.names]  # a sub-module, or a name
        else:
            continue
        for target in targets:
            if target == "vqe" or target.startswith("vqe."):
                resolved = resolve(target)
                if resolved is not None and resolved != module:
                    found.add(resolved)
    return found


GRAPH: dict[str, set[str]] = {module: imports_of(module) for module in MODULES}


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        item = stack.pop()
                        on_stack.discard(item)
                        component.append(item)
                        if item == node:
                            break
                    if len(component) > 1:
                        components.append(sorted(component))
    return components


def allowed_graph() -> dict[str, set[str]]:
    return {
        module: {target for target in targets if (module, target) not in KNOWN_UPWARD_EDGES}
        for module, targets in GRAPH.items()
    }


def test_every_unit_has_a_layer() -> None:
    placed = [unit for _, units in LAYERS for unit in units]
    assert len(placed) == len(set(placed)), "a unit is placed in two layers"
    missing = sorted({unit_of(module) for module in MODULES} - set(placed))
    assert not missing, f"give these a layer in vqe/layers.py: {missing}"


def upward_edges() -> list[str]:
    return [
        f"{module} ({LAYERS[layer_of(module)][0]}) → {target} ({LAYERS[layer_of(target)][0]})"
        for module, targets in sorted(GRAPH.items())
        for target in sorted(targets)
        if layer_of(target) > layer_of(module) and (module, target) not in KNOWN_UPWARD_EDGES
    ]


def test_imports_only_point_down() -> None:
    edges = upward_edges()
    assert not edges, "imports pointing up a layer (move the code down):\n" + "\n".join(edges)


def test_no_import_cycle_between_modules() -> None:
    cycles = strongly_connected(allowed_graph())
    assert not cycles, "import cycles between modules:\n" + "\n".join(map(" ↔ ".join, cycles))


def test_no_import_cycle_between_units() -> None:
    units: dict[str, set[str]] = defaultdict(set)
    for module, targets in allowed_graph().items():
        units[unit_of(module)] |= {unit_of(t) for t in targets if unit_of(t) != unit_of(module)}
    cycles = strongly_connected(dict(units))
    assert not cycles, "import cycles between units:\n" + "\n".join(map(" ↔ ".join, cycles))


def test_known_upward_edges_are_still_real() -> None:
    stale = [edge for edge in KNOWN_UPWARD_EDGES if edge[1] not in GRAPH.get(edge[0], ())]
    assert not stale, f"paid-off debts, delete them from KNOWN_UPWARD_EDGES: {stale}"
    sideways = [edge for edge in KNOWN_UPWARD_EDGES if layer_of(edge[1]) <= layer_of(edge[0])]
    assert not sideways, f"not upward, delete them from KNOWN_UPWARD_EDGES: {sideways}"


def test_the_package_docstring_names_every_unit_of_the_layer_table() -> None:
    """vqe/__init__.py describes the layers for readers; vqe/layers.py is the data. A unit added
    to the data but not to the description is a fact kept twice and already drifting."""
    import vqe

    units = [unit.split(".", 1)[1] for _, layer in LAYERS for unit in layer if unit != "vqe"]
    missing = [u for u in units if not re.search(rf"\b{re.escape(u)}\b", vqe.__doc__ or "")]
    assert not missing, f"vqe/__init__.py's layer list lacks {missing}"


def readme_layout() -> str:
    """README.md's ``## Layout`` section, up to the next ``## `` heading."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("\n## Layout\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def units_named(section: str) -> dict[str, str]:
    """Each unit the text names (``vqe/data/…``, ``vqe/macs.py``, ``vqe.macs`` → its unit), with
    how it was first written: the path of a package ends in ``/``, of a module in ``.py``."""
    found: dict[str, str] = {}
    for match in re.finditer(r"(?<![\w/.-])vqe([/.])(\w+)(\.py\b|/)?", section):
        separator, name, ending = match.groups()
        if name == "py" or (separator == "." and ending == "/"):
            continue
        written = f"vqe{separator}{name}{ending or ''}"
        found.setdefault(f"vqe.{name}", written)
    return found


def test_the_readme_layout_names_every_unit_and_only_units() -> None:
    """README's Layout describes the layers for readers; vqe/layers.py is the data. A unit of
    the table that the section leaves out, or a name there that is no unit (a moved module, a
    module written as a package), is the same fact kept twice and drifting."""
    named = units_named(readme_layout())
    units = [unit for _, layer in LAYERS for unit in layer if unit != "vqe"]
    missing = [unit for unit in units if unit not in named]
    unknown = sorted(written for unit, written in named.items() if unit not in units)
    wrong_form = sorted(
        written
        for unit, written in named.items()
        if unit in units and written.startswith("vqe/") and not (ROOT / written).exists()
    )
    assert not (missing or unknown or wrong_form), (
        f"README.md's Layout section lacks units {missing}; names non-units {unknown}; "
        f"names paths that do not exist {wrong_form} (vqe/layers.py is the table)"
    )


def test_units_named_reads_paths_and_dotted_names() -> None:
    text = "vqe/data/ build; vqe/macs.py budget; vqe.study app; configs/vqe.yaml; vqe/cli.py"
    assert units_named(text) == {
        "vqe.data": "vqe/data/",
        "vqe.macs": "vqe/macs.py",
        "vqe.study": "vqe.study",
        "vqe.cli": "vqe/cli.py",
    }
