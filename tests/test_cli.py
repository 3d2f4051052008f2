"""The ``vqe`` command (:mod:`vqe.cli`): every command lives in the commands wing and is a tool,
each answers ``--help`` through it, the old ``python -m`` paths hand over with one deprecation
line, the installed console script works, and the README lists the tools."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vqe import cli

ROOT = Path(__file__).resolve().parents[1]
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)
#: ``run_moved("old.module", "tool")`` in a deprecated alias.
MOVED_CALL = re.compile(r"run_moved\(\s*\"([\w.]+)\",\s*\"([\w-]+)\"\s*\)")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(path): path for path in (ROOT / "vqe").rglob("*.py")}


def defines_main_or_parses(path: Path) -> bool:
    """A module-level ``def main`` or an ``ArgumentParser`` built anywhere in the file (a bare
    ``argparse`` import is allowed: critic weight files may hold pickled ``Namespace``s)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    if any(isinstance(node, ast.FunctionDef) and node.name == "main" for node in tree.body):
        return True
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = node.func
            name = called.attr if isinstance(called, ast.Attribute) else getattr(called, "id", "")
            if name == "ArgumentParser":
                return True
    return False


def is_commands_wing(module: str) -> bool:
    return module == "vqe.cli" or module.startswith("vqe.cli.")


def test_commands_live_only_in_the_commands_wing() -> None:
    outside = sorted(
        module
        for module, path in package_modules().items()
        if not is_commands_wing(module) and defines_main_or_parses(path)
    )
    assert not outside, f"main() or argparse outside vqe/cli/: {outside}"


def test_table_holds_every_command_module() -> None:
    modules = [tool.module for tool in cli.TOOLS.values()]
    assert len(modules) == len(set(modules)), "a module is in the table twice"
    commands = {
        module
        for module, path in package_modules().items()
        if is_commands_wing(module)
        and module != "vqe.cli"
        and MAIN_GUARD.search(path.read_text(encoding="utf-8"))
    }
    assert set(modules) == commands


def test_runnable_modules_outside_the_wing_are_aliases_of_tools() -> None:
    """Every ``python -m`` path outside vqe/cli/ only hands over to a tool that exists."""
    for module, path in package_modules().items():
        text = path.read_text(encoding="utf-8")
        if is_commands_wing(module) or not MAIN_GUARD.search(text):
            continue
        calls = MOVED_CALL.findall(text)
        assert calls, f"{module}: runnable, but not through vqe.moved.run_moved"
        for old, tool in calls:
            assert old == module.removesuffix(".__main__"), f"{module} announces itself as {old}"
            assert tool in cli.TOOLS, f"{module} hands over to the unknown tool {tool!r}"


def test_entry_scripts_run_tools() -> None:
    """train_vqe.py, export_coreml.py, codalab_scoring/score.py … call a tool's main."""
    scripts = [*ROOT.glob("*.py"), *ROOT.glob("*/*.py")]
    pattern = re.compile(r"^\s*from (vqe[\w.]*) import main$", re.MULTILINE)
    tools = {tool.module for tool in cli.TOOLS.values()}
    for path in scripts:
        if path.relative_to(ROOT).parts[0] in ("vqe", "tests"):
            continue
        for module in pattern.findall(path.read_text(encoding="utf-8")):
            assert module in tools, f"{path.name} runs {module}, which is no tool"


def test_old_python_m_path_says_where_the_tool_went() -> None:
    run = subprocess.run(
        [sys.executable, "-m", "vqe.benchmarks.gpu_suite", "--help"],
        capture_output=True, text=True, cwd=ROOT,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert "python -m vqe.benchmarks.gpu_suite is deprecated" in run.stderr
    assert "use: vqe bench-gpu" in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
    assert "usage: vqe bench-gpu" in run.stdout


@pytest.mark.parametrize("name", list(cli.TOOLS))
def test_tool_help_exits_0(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    argv = sys.argv
    try:
        code = cli.main([name, "--help"])
    except SystemExit as exit_:  # argparse and Hydra exit after --help
        code = exit_.code
    assert code in (0, None)
    assert sys.argv is argv  # restored for whoever runs next
    assert capsys.readouterr().out.strip(), f"vqe {name} --help printed nothing"


def test_help_lists_every_tool(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    for name, tool in cli.TOOLS.items():
        assert re.search(rf"^  {re.escape(name)} .*\[{re.escape(tool.module)}\]$", out, re.M)


def test_unknown_or_missing_tool_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["evalute"]) == 2
    assert "did you mean evaluate" in capsys.readouterr().err
    assert cli.main([]) == 2
    assert "usage: vqe TOOL" in capsys.readouterr().err


def installed_vqe() -> str:
    script = Path(sys.executable).with_name("vqe")
    found = str(script) if script.is_file() else shutil.which("vqe")
    if found is None:
        pytest.fail("no vqe console script: install the package (pip install -e '.[dev]')")
    return found


def test_installed_console_script(tmp_path: Path) -> None:
    vqe = installed_vqe()
    listing = subprocess.run([vqe, "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    assert all(name in listing.stdout for name in cli.TOOLS)
    # A Hydra tool, outside the repository: its configs are found from the installed module.
    build = subprocess.run([vqe, "build", "--help"], capture_output=True, text=True, cwd=tmp_path)
    assert build.returncode == 0, build.stderr
    assert "source_dir" in build.stdout


def test_readme_lists_exactly_the_tools() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = re.search(r"^## Tools\n(.*?)^## ", readme, re.S | re.M)
    assert section, "README.md has no '## Tools' section"
    block = re.search(r"```bash\n(.*?)```", section.group(1), re.S)
    assert block, "the Tools section has no bash block"
    listed = []
    for line in block.group(1).splitlines():
        listed += re.split(r"[\s|\\]+", line.split("#")[0].replace("vqe ", " "))
    assert sorted(filter(None, listed)) == sorted(cli.TOOLS)
