"""The README's commands run as written (issue 16), and those of ``docs/benchmarks.md`` too.

Every line of the ```bash blocks of README.md, then of docs/benchmarks.md (``\\`` continuations
joined), is one command, sorted by its trailing comment:

* ``# setup`` / ``# test`` — the two lines ``.ci/run`` runs itself (the test line is this suite;
  both only in README.md);
* ``# real data …`` — needs the challenge data or the critics' weights: a Hydra tool composes
  its config with ``--cfg job``, an argparse tool must answer ``--help`` and list every option
  the line uses;
* a ``vqe A | B | …`` line — the Tools listing: every name must be a ``vqe`` tool;
* ``… Ctrl-C stops it`` — a server: started on a free port, it must print its URLs; then stopped;
* anything else runs on the demo set, in order (README.md, then docs/benchmarks.md), from a
  copy of the repository root (its
  top-level entries linked into a scratch folder, so outputs stay out of the checkout), with
  the arguments after ``quick:`` in its comment appended.

Placeholders: ``ROOT`` and ``/tmp/vqe_demo`` are the demo set this module builds once (with the
README's own ``vqe demo /tmp/vqe_demo`` line); ``CKPT`` is ``last.ckpt`` of the README's
training run and ``RUN`` that run's directory; ``votes.csv`` is the README's ```csv example. A command with anything else that
looks like a placeholder (``…``, ``<…>``, an upper-case word), or with a program this module
does not know, fails: a new README command must come with a rule here.

``VQE_README_TIMINGS=FILE`` writes every command's wall time there (JSON).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from vqe import cli

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
#: The files whose commands run, in this order; only README.md holds the CI lines.
DOC_FILES = (README, REPO / "docs" / "benchmarks.md")
DEMO_LINE = re.compile(r"^(python -m vqe\.cli\.demo|vqe demo) /tmp/vqe_demo$")
#: Programs a runnable README command may start with.
KNOWN_PROGRAMS = (
    "python train_vqe.py",
    "python export_coreml.py",
    "python baseline/baseline.py",
    "python codalab_scoring/score.py",
    "python -m vqe.",
    "vqe ",
)
#: Hydra tools (their ``# real data`` lines compose with ``--cfg job``), in both forms.
HYDRA_PROGRAMS = (
    "python train_vqe.py",
    "python -m vqe.cli.build",
    "python -m vqe.cli.evaluate",
    "python -m vqe.cli.macs",
    "vqe build ",
    "vqe train ",
    "vqe evaluate ",
    "vqe macs ",
)
#: What is left after substitution that still looks like a placeholder.
PLACEHOLDER = re.compile(r"…|<[^>]*>|\b[A-Z][A-Z0-9_]{2,}\b")
TIMEOUT_S = 300  # per command; the training line is the longest (~1 min quick)


@dataclass(frozen=True)
class Command:
    text: str  # as written, continuations joined, comment removed
    comment: str  # the trailing comment, without '#'
    line: int  # line of its file where it starts
    file: str = "README.md"  # relative to the repository root

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def kind(self) -> str:
        if self.comment in ("setup", "test"):
            return "ci"
        if self.comment.startswith("real data"):
            return "real"
        if self.text.startswith("vqe ") and " | " in self.text:
            return "listing"
        if "Ctrl-C stops it" in self.comment:
            return "server"
        return "run"

    @property
    def quick(self) -> list[str]:
        """The arguments after ``quick:`` in the comment."""
        _, found, rest = self.comment.partition("quick:")
        return shlex.split(rest) if found else []


def split_comment(line: str) -> tuple[str, str]:
    """(command, comment) at the first ``#`` outside quotes that follows a blank."""
    quote = None
    for index, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index].rstrip(), line[index + 1 :].strip()
    return line.rstrip(), ""


def readme_commands(text: str, file: str = "README.md") -> list[Command]:
    """Every command of the ```bash blocks, in order."""
    commands = []
    for block in re.finditer(r"^```bash\n(.*?)^```", text, re.S | re.M):
        first_line = text[: block.start()].count("\n") + 2
        pending: list[str] = []
        start = first_line
        for offset, raw in enumerate(block.group(1).splitlines()):
            if not pending:
                start = first_line + offset
            code, comment = split_comment(raw)
            if code.endswith("\\"):
                pending.append(code[:-1].strip())
                continue
            pending.append(code.strip())
            joined = " ".join(part for part in pending if part)
            pending = []
            if joined:
                commands.append(Command(joined, comment, start, file))
    return commands


def doc_commands() -> list[Command]:
    """The commands of every file of :data:`DOC_FILES`, README.md's first."""
    return [
        command
        for path in DOC_FILES
        for command in readme_commands(
            path.read_text(encoding="utf-8"), str(path.relative_to(REPO))
        )
    ]


COMMANDS = doc_commands()


# --------------------------------------------------------------------------- running


def repository_copy(folder: Path) -> Path:
    """``folder`` with the repository's tracked top-level entries linked into it."""
    folder.mkdir(parents=True, exist_ok=True)
    listed = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    for name in sorted({path.split("/")[0] for path in listed.splitlines()}):
        if name not in ("tests", "outputs") and not (folder / name).exists():
            (folder / name).symlink_to(REPO / name)
    return folder


def command_env(demo: Path | None = None) -> dict[str, str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    env.setdefault("OMP_NUM_THREADS", "1")  # the suite runs 2 workers on 2 cores
    if demo is not None:
        env["VQE_DEMO_DIR"] = str(demo)  # the training run's default demo set
    return env


def run(
    argv: list[str], cwd: Path, env: dict[str, str]
) -> tuple[subprocess.CompletedProcess, float]:
    started = time.perf_counter()
    result = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT_S
    )
    return result, time.perf_counter() - started


def as_argv(text: str) -> list[str]:
    argv = shlex.split(text)
    if argv[0] == "python":
        argv[0] = sys.executable  # the interpreter of this test, with vqe installed
    elif argv[0] == "vqe":
        argv = [sys.executable, "-m", "vqe.cli", *argv[1:]]
    return argv


def program_of(text: str) -> list[str]:
    """The argv that starts the command's program: ``--help`` of it is the tool's own help."""
    argv = as_argv(text)
    if text.startswith("vqe "):
        return argv[:4]  # python -m vqe.cli TOOL
    return argv[: 3 if argv[1] == "-m" else 2]


def check_program(command: Command) -> None:
    if not command.text.startswith(KNOWN_PROGRAMS):
        pytest.fail(f"{command.where}: no rule for the program of {command.text!r}")


def failure(command: Command, result: subprocess.CompletedProcess) -> str:
    return (
        f"{command.where}: {command.text!r} exited {result.returncode}\n"
        f"stdout (tail):\n{result.stdout[-3000:]}\nstderr (tail):\n{result.stderr[-3000:]}"
    )


@dataclass
class Chain:
    """The scratch repository root, the demo set and what earlier commands made."""

    cwd: Path
    demo: Path
    timings: dict[str, float]

    def checkpoint(self) -> str:
        found = sorted(self.cwd.glob("outputs/train/*/checkpoints/last.ckpt"))
        if not found:
            pytest.fail("CKPT or RUN is used before the README's training line made a checkpoint")
        return str(found[-1].relative_to(self.cwd))

    def run_dir(self) -> str:
        """The training run's directory: the folder above ``checkpoints/last.ckpt``."""
        return str(Path(self.checkpoint()).parents[1])

    def substituted(self, command: Command) -> str:
        text = command.text.replace("/tmp/vqe_demo", str(self.demo))
        text = re.sub(r"\bROOT\b", str(self.demo), text)
        if re.search(r"\bCKPT\b", text):
            text = re.sub(r"\bCKPT\b", self.checkpoint(), text)
        if re.search(r"\bRUN\b", text):
            text = re.sub(r"\bRUN\b", self.run_dir(), text)
        left = PLACEHOLDER.findall(text.replace(str(self.demo), ""))
        if left:
            pytest.fail(f"{command.where}: no rule for the placeholders {left}")
        return text


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """The scratch root, with the demo set built by the README's own line."""
    scratch = tmp_path_factory.mktemp("readme")
    cwd, demo = repository_copy(scratch / "repo"), scratch / "vqe_demo"
    lines = [c for c in COMMANDS if DEMO_LINE.match(c.text)]
    assert len(lines) == 1, "README.md must build the demo set with one line"
    env = command_env()
    text = lines[0].text.replace("/tmp/vqe_demo", str(demo))
    result, seconds = run(as_argv(text), cwd, env)
    assert result.returncode == 0, failure(lines[0], result)
    return Chain(cwd, demo, {lines[0].text: seconds})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serve_briefly(argv: list[str], cwd: Path, env: dict[str, str]) -> list[str]:
    """Start a server, return its output up to the second URL, then stop it (SIGINT)."""
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    lines: list[str] = []
    deadline = time.monotonic() + 60
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if sum("http://" in seen for seen in lines) >= 2 or time.monotonic() > deadline:
                break
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return lines


def write_timings(timings: dict[str, float]) -> None:
    target = os.environ.get("VQE_README_TIMINGS")
    if target:
        Path(target).write_text(json.dumps(timings, indent=2) + "\n", encoding="utf-8")


def csv_example() -> str:
    blocks = re.findall(r"^```csv\n(.*?)^```", README.read_text(encoding="utf-8"), re.S | re.M)
    assert len(blocks) == 1, "README.md must hold one ```csv block: the votes.csv example"
    return blocks[0]


# --------------------------------------------------------------------------- tests


def test_commands_are_found_and_known() -> None:
    kinds = [command.kind for command in COMMANDS]
    assert kinds.count("ci") == 2, "the '# setup' and '# test' lines"
    assert all(c.file == "README.md" for c in COMMANDS if c.kind == "ci"), "CI lines: README.md"
    assert "run" in kinds and "real" in kinds
    files = [command.file for command in COMMANDS]
    for path in DOC_FILES:
        assert str(path.relative_to(REPO)) in files, f"no ```bash commands in {path}"
    assert files == sorted(files, key=[str(p.relative_to(REPO)) for p in DOC_FILES].index)
    for command in COMMANDS:
        if command.kind in ("run", "real", "server"):
            check_program(command)


def test_parsing_rules() -> None:
    text = (
        "```bash\npython -m vqe.x --a 'b # c' \\\n    --d e  # quick: --f 1\n"
        "vqe a | b  # listing\n```\n"
    )
    first, second = readme_commands(text)
    assert first.text == "python -m vqe.x --a 'b # c' --d e" and first.quick == ["--f", "1"]
    assert first.line == 2 and first.kind == "run" and first.where == "README.md:2"
    assert second.kind == "listing"
    (other,) = readme_commands("```bash\nvqe bench-x  # quick: --y\n```\n", "docs/b.md")
    assert other.where == "docs/b.md:2" and other.quick == ["--y"]


def test_vqe_tool_lines_follow_their_module_forms() -> None:
    """``vqe build …`` / ``vqe evaluate …`` are Hydra tools like their ``python -m`` forms;
    ``--help`` of a ``vqe TOOL`` line asks the tool, not the ``vqe`` command."""
    for text in ("vqe build source_dir=/x", "vqe evaluate ckpt=x", "vqe macs model_vqe=tiny"):
        assert text.startswith(HYDRA_PROGRAMS)
    assert not "vqe buildx a=b".startswith(HYDRA_PROGRAMS)
    python = sys.executable
    assert program_of("vqe score-outputs --vqa v") == [python, "-m", "vqe.cli", "score-outputs"]
    assert program_of("python -m vqe.temporal --x") == [python, "-m", "vqe.temporal"]
    assert program_of("python baseline/baseline.py --x") == [python, "baseline/baseline.py"]
    assert DEMO_LINE.match("vqe demo /tmp/vqe_demo") and DEMO_LINE.match(
        "python -m vqe.cli.demo /tmp/vqe_demo"
    )


def test_tools_listing_names_tools() -> None:
    for command in (c for c in COMMANDS if c.kind == "listing"):
        names = [n for n in re.split(r"[\s|]+", command.text.removeprefix("vqe ")) if n]
        unknown = sorted(set(names) - set(cli.TOOLS))
        assert not unknown, f"{command.where}: not vqe tools: {unknown}"


def test_real_data_commands_are_valid(tmp_path: Path) -> None:
    """Hydra lines compose (``--cfg job``); argparse lines' options are in their ``--help``."""
    cwd, env = repository_copy(tmp_path / "repo"), command_env()
    for command in (c for c in COMMANDS if c.kind == "real"):
        check_program(command)
        argv = as_argv(command.text)
        if command.text.startswith(HYDRA_PROGRAMS):
            result, _ = run([*argv, "--cfg", "job"], cwd, env)
            assert result.returncode == 0, failure(command, result)
            continue
        result, _ = run([*program_of(command.text), "--help"], cwd, env)
        assert result.returncode == 0, failure(command, result)
        for option in (arg.split("=")[0] for arg in argv if arg.startswith("--")):
            assert option in result.stdout, f"{command.where}: {option} not in --help"


def chain_steps(chain: Chain) -> Iterator[tuple[Command, str]]:
    for command in COMMANDS:
        if command.kind in ("run", "server") and not DEMO_LINE.match(command.text):
            check_program(command)
            yield command, chain.substituted(command)


def test_every_demo_command_runs(chain: Chain) -> None:
    """The README's then docs/benchmarks.md's commands in order, on the demo set, each exiting 0
    without a traceback."""
    (chain.cwd / "votes.csv").write_text(csv_example(), encoding="utf-8")
    env = command_env(chain.demo)
    try:
        for command, text in chain_steps(chain):
            argv = [*as_argv(text), *command.quick]
            started = time.perf_counter()
            if command.kind == "server":
                output = serve_briefly([*argv, "--port", str(free_port())], chain.cwd, env)
                assert sum("http://" in line for line in output) >= 2, "".join(output)
            else:
                result, _ = run(argv, chain.cwd, env)
                assert result.returncode == 0, failure(command, result)
                assert "Traceback" not in result.stderr, failure(command, result)
            chain.timings[command.text] = time.perf_counter() - started
    finally:
        write_timings(chain.timings)
