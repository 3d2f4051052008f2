"""``vqe build``: the frame index of the official layout (:func:`vqe.dataprep.build.build_dataset`).

    vqe build source_dir=DIR [out_dir=DIR] [fps=30|null] [workers=N]
              [shard=k/n] [overwrite=true] [progress=false]
    vqe build source_dir=DIR [out_dir=DIR] merge=true

The keys are those of ``configs/build.yaml`` (``vqe build --help`` lists them); what is written,
resuming, shards and the checks are described in :mod:`vqe.dataprep.build`. ``merge=true`` only
merges shard CSVs copied into one index root (shards that ran on different disks).

The command prints the failures, the warnings and a summary table and exits with status 1 when
anything failed or an index was kept (2 for bad arguments).

Interruptions: SIGTERM or SIGINT stop the worker processes at once (none outlives the build),
write no index and exit with 143 / 130. Frames of a video cut short carry no
``extraction.json``, so running the same command again resumes where it stopped.

Hydra writes nothing to the working directory: the run directory is ``.`` without changing into
it, ``hydra.output_subdir`` is null and logging goes to stdout only (``configs/build.yaml``).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from vqe.batch_jobs import printable
from vqe.config_root import CONFIG_DIR
from vqe.dataprep.build import build_dataset, merge_shards
from vqe.dataprep.index import IndexKept


class BuildInterrupted(BaseException):
    """SIGTERM / SIGINT arrived; a BaseException like KeyboardInterrupt, so that no ``except
    Exception`` on the way swallows it (the build stops its workers on any exception)."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum  # the shell's convention: 143 for SIGTERM, 130 for SIGINT


def _raise_interrupted(signum: int, frame: object) -> None:
    # Further signals would break off the cleanup, which is short (the build kills workers
    # that do not exit within seconds), and leave workers behind.
    for name in (signal.SIGINT, signal.SIGTERM):
        signal.signal(name, signal.SIG_IGN)
    raise BuildInterrupted(signum)


@contextmanager
def _interruptible() -> Iterator[None]:
    """Turn SIGTERM and SIGINT into :class:`BuildInterrupted` in the main thread."""
    previous = {
        name: signal.signal(name, _raise_interrupted) for name in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield
    finally:
        for name, handler in previous.items():
            signal.signal(name, handler)


# An absolute config path: a relative one would resolve as a package ``configs`` when this
# module is imported (the ``vqe build`` command) rather than run as ``__main__``.
@hydra.main(version_base="1.3", config_path=str(CONFIG_DIR), config_name="build")
def _build_main(config: DictConfig) -> None:
    if OmegaConf.is_missing(config, "source_dir"):
        print("error: source_dir is required: vqe build source_dir=DIR", file=sys.stderr)
        sys.exit(2)
    out_dir = Path(config.out_dir) if config.out_dir is not None else None
    try:
        with _interruptible():
            if config.merge:
                for path in merge_shards(out_dir or Path(config.source_dir), config.overwrite):
                    print(f"wrote {path}")
                return
            report = build_dataset(
                Path(config.source_dir),
                out_dir=out_dir,
                fps=config.fps,
                workers=config.workers,
                shard=config.shard,
                overwrite=config.overwrite,
                progress=config.progress,
            )
    except BuildInterrupted as interruption:
        print(
            f"{interruption}: no index written; finished videos are kept, run the same command "
            "again to resume",
            file=sys.stderr,
        )
        sys.exit(interruption.exit_code)
    except IndexKept as kept:  # merge=true
        print(f"error: {printable(str(kept))}", file=sys.stderr)
        sys.exit(1)
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {printable(str(error))}", file=sys.stderr)
        sys.exit(2)
    if report.problems():
        print(report.problems())
    print(report.summary_table())
    if not report.ok:
        sys.exit(1)


def builder_help() -> str:
    """The builder's keys with their defaults and comments, from ``configs/build.yaml``."""
    lines = [
        "usage: vqe build source_dir=DIR [key=value ...]",
        "       vqe build source_dir=DIR [out_dir=DIR] merge=true",
        "",
        "Videos of the official layout -> PNG frames + train.csv / test.csv (see the module",
        "docstring of vqe/dataprep/build.py for resuming, shards and checks). Keys:",
        "",
    ]
    for line in (CONFIG_DIR / "build.yaml").read_text(encoding="utf-8").splitlines():
        if line.startswith("hydra:"):
            break
        if line and not line[0].isspace() and not line.startswith(("#", "defaults:", "-")):
            lines.append(f"  {line}")
    lines += ["", "Hydra's own options: --hydra-help."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """The command; ``--help`` lists only the builder's keys (Hydra's help would list every
    training config group, since the builder's config lives in the shared config folder).
    Failures exit through ``sys.exit`` with the statuses above (Hydra returns nothing)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in args):
        print(builder_help())
        return 0
    saved = sys.argv
    sys.argv = [saved[0], *args]  # Hydra reads its overrides from sys.argv
    try:
        _build_main()
    finally:
        sys.argv = saved
    return 0


if __name__ == "__main__":
    from vqe.cli.config_hints import exit_on_unknown_key

    exit_on_unknown_key("build")  # a mistyped key: one line naming the nearest one, exit 1
    sys.exit(main())
