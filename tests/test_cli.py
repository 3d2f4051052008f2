"""The ``vqe`` command (vqe/cli.py): every runnable module is a tool, each answers ``--help``
through it, the installed console script works, and the README lists the tools."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vqe import cli

ROOT = Path(__file__).resolve().parents[1]
MAIN_GUARD = re.compile(r"^if __name__ == [\"']__main__[\"']:", re.MULTILINE)


def runnable_modules() -> set[str]:
    found = set()
    for path in (ROOT / "vqe").rglob("*.py"):
        if MAIN_GUARD.search(path.read_text(encoding="utf-8")):
            found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found - {"vqe.cli"}


def entry_script_modules() -> set[str]:
    """Modules whose ``main`` an entry script outside ``vqe/`` runs (``export_coreml.py`` …)."""
    # Paths relative to the checkout, so the clone's own folder name (often "vqe") plays no part.
    scripts = [*ROOT.glob("*.py"), *ROOT.glob("*/*.py")]
    pattern = re.compile(r"^\s*from (vqe[\w.]*) import main$", re.MULTILINE)
    found = set()
    for path in scripts:
        if path.relative_to(ROOT).parts[0] not in ("vqe", "tests"):
            found.update(pattern.findall(path.read_text(encoding="utf-8")))
    return found


def test_table_holds_every_runnable_module() -> None:
    modules = [tool.module for tool in cli.TOOLS.values()]
    assert len(modules) == len(set(modules)), "a module is in the table twice"
    assert set(modules) == runnable_modules() | entry_script_modules()


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
