"""Every ``vqe.…`` name and ``vqe/…`` path the documentation mentions still exists.

Modules move (issue 29) and a doc that names the old place sends a reader nowhere. The names are
read from README.md, docs/**/*.md, configs/**/*.yaml (``_target_`` lines and comments alike),
vqe/models/pretrained/*.md and the tools' help texts (every string literal of vqe/cli/**/*.py,
of each module in the ``vqe`` tool table and of the top-level scripts). A dotted name must be an
importable module, or an attribute of one (``vqe.data.photos.TRAIN_PHOTOS``: the longest
importable prefix, then ``getattr`` for the rest); a path must exist. A deprecated ``python -m``
alias (a module that only hands over through :func:`vqe.moved.run_moved`) counts as stale,
unless its line says ``deprecated``. Every stale name is listed in the failure, with where.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import NamedTuple

from vqe import cli

REPO = Path(__file__).resolve().parents[1]

#: ``vqe.a.b``: not part of a longer word, path or URL, not a Hydra resolver (``${vqe.x:}``).
DOTTED = re.compile(r"(?<![\w/.${-])vqe(?:\.[A-Za-z_]\w*)+(?![\w-])")
#: ``vqe/a/b.py``, ``vqe/a/`` (and ``../vqe/…`` from docs/): files and folders of the package.
PATH = re.compile(r"(?<![\w/.~-])(?:\.\./)*(vqe/[\w./-]*[\w/])")
#: File names that look dotted (``vqe.yaml``), not modules.
FILE_SUFFIXES = frozenset({"yaml", "yml", "py", "md", "ckpt", "csv", "json", "txt", "zip", "pth"})
#: A path with a placeholder in it (``vqe/models/pretrained/NAME.ckpt``) names no one file.
PLACEHOLDER = re.compile(r"\b[A-Z][A-Z0-9_]{2,}\b|\*")
#: Paths of other repositories that happen to start with ``vqe/``, and whose they are.
EXTERNAL_PATHS: dict[str, str] = {
    "vqe/dataset_builder.py": "the organisers' starter kit (docs/protocol.md)",
    "vqe/src/": "the organisers' starter kit, varunj/cvpr-vqe (docs/protocol.md)",
}


class Mention(NamedTuple):
    """One name or path, where it was found."""

    name: str
    where: str  # relative file:line
    line: str  # the line's text, for the deprecation exemption


def documentation_files() -> list[Path]:
    """The prose and config files whose every line is read."""
    return [
        REPO / "README.md",
        *sorted((REPO / "docs").rglob("*.md")),
        *sorted((REPO / "configs").rglob("*.yaml")),
        *sorted((REPO / "vqe" / "models" / "pretrained").glob("*.md")),
    ]


def tool_sources() -> list[Path]:
    """The files holding the tools' help texts: the commands wing, each tool's module, scripts."""
    files = set((REPO / "vqe" / "cli").rglob("*.py"))
    for tool in cli.TOOLS.values():
        origin = module_file(tool.module)
        if origin is not None:
            files.add(origin)
    files |= {REPO / "train_vqe.py", REPO / "export_coreml.py"}
    return sorted(path for path in files if path.is_file())


def scan(text: str, where: str, lines: dict[int, str]) -> Iterator[Mention]:
    """Every dotted name and package path in ``text``; ``where`` is the file, ``lines`` its
    lines by number (a string literal spanning lines reports its first)."""
    for number, line in lines.items():
        for match in DOTTED.finditer(line):
            if match.group(0).rpartition(".")[2] not in FILE_SUFFIXES:
                yield Mention(match.group(0), f"{where}:{number}", line)
        for match in PATH.finditer(line):
            yield Mention(match.group(1), f"{where}:{number}", line)
    del text


def mentions_in_file(path: Path) -> Iterator[Mention]:
    text = path.read_text(encoding="utf-8")
    yield from scan(text, str(path.relative_to(REPO)), dict(enumerate(text.splitlines(), 1)))


def mentions_in_strings(path: Path) -> Iterator[Mention]:
    """The names inside the string literals of a Python file (help texts, docstrings, the tool
    table), not those of its import lines."""
    where = str(path.relative_to(REPO))
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), where)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value
            lines = {node.lineno + offset: line for offset, line in enumerate(text.splitlines())}
            yield from scan(text, where, lines)


def all_mentions() -> list[Mention]:
    found = [m for path in documentation_files() for m in mentions_in_file(path)]
    found += [m for path in tool_sources() for m in mentions_in_strings(path)]
    return found


@cache
def module_file(name: str) -> Path | None:
    """The source file of module ``name`` if it is an importable module (without running it)."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):  # a parent is missing or not a package
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin)


def _is_main_guard(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and "__main__" in ast.unparse(node.test)


@cache
def handover(name: str) -> str | None:
    """The ``vqe`` tool that ``python -m name`` now hands over to (:func:`vqe.moved.run_moved`
    in its ``__main__`` block), or None when it still runs itself."""
    origin = module_file(name)
    if origin is None or origin.suffix != ".py":
        return None
    for node in ast.parse(origin.read_text(encoding="utf-8")).body:
        if not _is_main_guard(node):
            continue
        for call in ast.walk(node):
            if (
                isinstance(call, ast.Call)
                and ast.unparse(call.func).endswith("run_moved")
                and len(call.args) == 2
                and isinstance(call.args[1], ast.Constant)
            ):
                return f"vqe {call.args[1].value}"
    return None


@cache
def is_alias(name: str) -> bool:
    """A module left only as a deprecated ``python -m`` path: nothing but the hand-over."""
    origin = module_file(name)
    if handover(name) is None or origin is None:
        return False
    body = ast.parse(origin.read_text(encoding="utf-8")).body
    return all(
        _is_main_guard(node)
        or (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))  # docstring
        or (isinstance(node, ast.ImportFrom) and node.module == "__future__")
        for node in body
    )


@cache
def why_stale(name: str) -> str | None:
    """None when the dotted ``name`` resolves; else what is wrong with it."""
    if module_file(name) is not None:
        return f"a deprecated alias of {handover(name)}" if is_alias(name) else None
    parts = name.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        prefix = ".".join(parts[:cut])
        if module_file(prefix) is None:
            continue
        if is_alias(prefix):
            return f"{prefix} is a deprecated alias of {handover(prefix)}"
        try:
            value: object = importlib.import_module(prefix)
        except Exception as error:  # noqa: BLE001 - a module that fails to import is stale too
            return f"{prefix} does not import ({type(error).__name__}: {error})"
        for attribute in parts[cut:]:
            if not hasattr(value, attribute):
                return f"no such module, and {prefix} has no {'.'.join(parts[cut:])}"
            value = getattr(value, attribute)
        return None
    return "no such module"


def stale(mention: Mention) -> str | None:
    """Why ``mention`` is stale, or None when it is fine."""
    if mention.name.startswith("vqe/"):
        if mention.name.startswith(tuple(EXTERNAL_PATHS)) or PLACEHOLDER.search(mention.name):
            return None
        return None if (REPO / mention.name).exists() else "no such path"
    origin = module_file(mention.name)
    if origin is not None and mention.where.startswith(str(origin.relative_to(REPO)) + ":"):
        return None  # a module naming itself (an alias's own docstring)
    why = why_stale(mention.name)
    if why is None and f"python -m {mention.name}" in mention.line and handover(mention.name):
        why = f"python -m {mention.name} is deprecated: {handover(mention.name)}"
    if why is not None and "deprecated" in mention.line.lower():
        return None  # the line itself says so
    return why


# --------------------------------------------------------------------------- tests


def test_the_scanner_finds_names_and_skips_look_alikes() -> None:
    text = (
        "see vqe.data.demo, `vqe/cli/bench/` and ../vqe/layers.py; not configs/vqe.yaml,\n"
        "train_vqe.py, ${vqe.mac_budget:}, vqe.egg-info, ~/.cache/vqe/demo or vqe-lut-unet.md\n"
    )
    names = [m.name for m in scan(text, "x.md", dict(enumerate(text.splitlines(), 1)))]
    assert names == ["vqe.data.demo", "vqe/cli/bench/", "vqe/layers.py"]
    assert why_stale("vqe.data.photos.TRAIN_PHOTOS") is None  # an attribute
    assert why_stale("vqe.layers.LAYERS") is None
    assert why_stale("vqe.no_such.module") == "no such module, and vqe has no no_such.module"
    assert "has no" in (why_stale("vqe.layers.NO_SUCH_NAME") or "")
    assert stale(Mention("vqe/models/pretrained/NAME.ckpt", "x.md:1", "")) is None
    assert stale(Mention("vqe/no_such_file.py", "x.md:1", "")) == "no such path"


def test_the_tool_table_names_modules() -> None:
    """``vqe TOOL`` imports ``Tool.module`` by name: it must be a module, not an attribute."""
    missing = {name: t.module for name, t in cli.TOOLS.items() if module_file(t.module) is None}
    assert not missing, f"vqe.cli.TOOLS names modules that do not exist: {missing}"
    # An alias hands over to its tool by name: a tool run by its own alias would loop.
    aliases = {name: t.module for name, t in cli.TOOLS.items() if is_alias(t.module)}
    assert not aliases, f"vqe.cli.TOOLS runs deprecated aliases, not the tools: {aliases}"


def test_every_mentioned_name_and_path_exists() -> None:
    mentions = all_mentions()
    assert len(mentions) > 100, "the scan found too little: are the sources still there?"
    problems = sorted(
        {f"{m.where}: {m.name} ({why})" for m in mentions if (why := stale(m)) is not None}
    )
    assert not problems, f"{len(problems)} stale names (rename or delete them):\n" + "\n".join(
        problems
    )
