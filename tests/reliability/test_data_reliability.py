"""Reliability of the dataset builder and the frame loaders (issue 12, items 3, 4, 7 and 8).

Each test is a case a user met: an interrupted build, a build that refuses every video, a bad
frame in the index, a truncated video. Inputs are tiny; the signal case runs the real command.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import numpy as np
import pandas as pd
import pytest
from index_helpers import TRAIN_VIDEOS, write_frame_set

from vqe import schema
from vqe.data.datamodule import VQEDataModule
from vqe.data.datasets import UnreadableFrame, read_index
from vqe.dataprep.build import build_dataset
from vqe.dataprep.extract import MARKER_FILE
from vqe.video import write_video

UNSUPERVISED = "train/unsupervised"
CLIP_FPS = 20
REPO_ROOT = Path(__file__).resolve().parents[2]


def command_env() -> dict[str, str]:
    """The commands run this checkout's vqe, whatever their working directory."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=path)


def noise_frames(count: int, seed: int, height: int = 48, width: int = 64) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def write_clips(root: Path, count: int, frames: int, height: int = 48, width: int = 64) -> None:
    for number in range(1, count + 1):
        path = root / UNSUPERVISED / f"video_{number:04d}_x.mp4"
        write_video(path, noise_frames(frames, number, height, width), fps=CLIP_FPS)


def run_build(*arguments: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "vqe.cli.build", "progress=false", *arguments],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=command_env(),
    )


def csv_rows(path: Path) -> int:
    return len(pd.read_csv(path))


# --------------------------------------------------------------------------- item 3: signals


def session_members(session: int) -> list[int]:
    """Live (not zombie) processes of a session, read from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (command)": state, ppid, pgrp, sid
        if fields[0] != "Z" and int(fields[3]) == session:
            members.append(int(entry))
    return members


def wait_for(condition, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc")
@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_interrupted_build_leaves_no_worker_and_resumes(
    tmp_path: Path, signum: int, exit_code: int
) -> None:
    source, out = tmp_path / "data", tmp_path / "frames"
    write_clips(source, count=3, frames=10)
    log_path = tmp_path / "build.log"
    with log_path.open("w") as log_file:
        # fps=600 writes 30 PNGs per decoded frame: long enough to be caught mid-extraction.
        # Output goes to a file: a surviving worker would hold a pipe open.
        build = subprocess.Popen(
            [sys.executable, "-m", "vqe.cli.build", f"source_dir={source}", f"out_dir={out}"]
            + ["workers=2", "fps=600", "progress=false"],
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its session id is its pid: finds the workers later
            env=command_env(),
        )
        try:
            assert wait_for(lambda: any(out.rglob("frame_0001.png")), 90), log_path.read_text()
            os.kill(build.pid, signum)
            assert build.wait(timeout=30) == exit_code, log_path.read_text()
            # The fork server leaves when the build has gone; the workers were stopped before.
            assert wait_for(lambda: not session_members(build.pid), 5), (
                f"still running after the build exited: {session_members(build.pid)}"
            )
        finally:
            for pid in session_members(build.pid):
                os.kill(pid, signal.SIGKILL)
    assert "interrupted" in log_path.read_text()
    # Stopped, not finished: the signal came during the first videos, the third was queued.
    assert len(list(out.rglob(MARKER_FILE))) < 3
    assert not (out / schema.TRAIN_CSV).exists()  # no index from a cut-short build
    for marker in out.rglob(MARKER_FILE):  # a folder marked done holds all its frames
        assert len(list((marker.parent / "x").glob("*.png"))) == 10 * 600 // CLIP_FPS

    resumed = build_dataset(source, out_dir=out, fps=600, progress=False)
    assert resumed.ok, resumed.problems()
    assert csv_rows(out / schema.TRAIN_CSV) == 3 * 10 * 600 // CLIP_FPS


# --------------------------------------------------------------------------- item 4: the index


def test_build_refusing_every_video_keeps_the_index(tmp_path: Path) -> None:
    source = tmp_path / "data"
    write_clips(source, count=2, frames=4)
    assert build_dataset(source, progress=False).ok
    index = source / schema.TRAIN_CSV
    before = index.read_bytes()

    refused = run_build(f"source_dir={source}", "fps=15", cwd=tmp_path)  # a mistyped fps
    assert refused.returncode == 1, refused.stderr
    assert index.read_bytes() == before
    assert f"kept {index}" in refused.stdout and "empty" in refused.stdout
    assert "overwrite=true" in refused.stdout  # the per-video failures say what to do
    assert sorted(path.name for path in source.iterdir()) == ["train", schema.TRAIN_CSV]


def test_index_losing_rows_is_kept_unless_overwrite(tmp_path: Path) -> None:
    source = tmp_path / "data"
    write_clips(source, count=2, frames=4)
    build_dataset(source, progress=False)
    index = source / schema.TRAIN_CSV
    rows = csv_rows(index)
    (source / UNSUPERVISED / "video_0002_x.mp4").unlink()

    smaller = build_dataset(source, progress=False)
    assert not smaller.ok and csv_rows(index) == rows
    assert len(smaller.kept_indexes) == 1 and "lose 6" in smaller.kept_indexes[0]
    assert str(index) in smaller.problems()

    replaced = build_dataset(source, overwrite=True, progress=False)
    assert replaced.ok, replaced.problems()
    assert csv_rows(index) == rows // 2


# --------------------------------------------------------------------------- item 7: bad frames


@pytest.fixture()
def frame_set(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    return tmp_path, write_frame_set(tmp_path, schema.TRAIN_CSV, TRAIN_VIDEOS)


def damaged_row(root: Path, table: pd.DataFrame) -> tuple[Path, int]:
    """A frame deep in the CSV (so its CSV line differs from its filtered row) and its line."""
    row = int(table.index[table[schema.VIDEO_ID] == "video_0005"][2])
    return root / table.at[row, schema.IMG_SOURCE], row + 2  # the header is line 1


def unsupervised_module(root: Path, **settings) -> VQEDataModule:
    return VQEDataModule(
        root, train_query="subset == 'unsupervised'", crop_size=None, batch_size=1, **settings
    )


def test_missing_frame_stops_setup_naming_file_and_csv_line(frame_set) -> None:
    root, table = frame_set
    path, line = damaged_row(root, table)
    path.unlink()
    with pytest.raises(FileNotFoundError) as error:
        unsupervised_module(root).setup("fit")
    message = str(error.value)
    assert f"{root / schema.TRAIN_CSV} line {line}: {path.relative_to(root).as_posix()}" in message
    assert "on_bad_frame=skip" in message


def test_missing_frame_is_skipped_and_logged_when_asked(frame_set, caplog) -> None:
    root, table = frame_set
    path, line = damaged_row(root, table)
    path.unlink()
    datamodule = unsupervised_module(root, on_bad_frame="skip")
    with caplog.at_level(logging.WARNING, logger="vqe.data.datasets"):
        datamodule.setup("fit")
    unsupervised = int((table[schema.SUBSET] == schema.SUBSET_UNSUPERVISED).sum())
    assert len(datamodule.train_set) == unsupervised - 1
    assert f"line {line}: {path.relative_to(root).as_posix()}" in caplog.text
    assert sum(1 for _ in datamodule.train_dataloader()) == unsupervised - 1


def test_corrupt_frame_stops_the_epoch_naming_file_and_csv_line(frame_set) -> None:
    root, table = frame_set
    path, line = damaged_row(root, table)
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    datamodule = unsupervised_module(root)
    datamodule.setup("fit")  # a stat finds nothing wrong: only a decode does
    with pytest.raises(UnreadableFrame) as error:
        for _ in datamodule.train_dataloader():
            pass
    assert str(path) in str(error.value) and f"train.csv line {line}" in str(error.value)


def test_corrupt_frame_is_skipped_and_logged_when_asked(frame_set, caplog) -> None:
    root, table = frame_set
    path, line = damaged_row(root, table)
    path.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    datamodule = unsupervised_module(root, on_bad_frame="skip")
    datamodule.setup("fit")
    with caplog.at_level(logging.WARNING, logger="vqe.data.datasets"):
        batches = list(datamodule.train_dataloader())
    assert len(batches) == len(datamodule.train_set)  # a stand-in of the same group served
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 1 and str(path) in skipped[0] and f"line {line}" in skipped[0]


def test_bad_policy_and_bad_values_name_key_and_csv_line(frame_set) -> None:
    root, table = frame_set
    with pytest.raises(ValueError, match="on_bad_frame"):
        unsupervised_module(root, on_bad_frame="ignore")
    bad = table.copy()
    bad.loc[7, schema.HEIGHT] = 0
    bad.to_csv(root / "bad.csv", index=False)
    with pytest.raises(ValueError, match="line 9 has .0."):
        read_index(root / "bad.csv", "subset == 'real'")


# --------------------------------------------------------------------------- item 8: truncation


def write_truncated(path: Path, frames: int) -> None:
    """A video cut in half whose header (moved to the front) still declares every frame, like an
    interrupted download of a streamable file."""
    whole = path.with_name("whole.mp4")
    write_video(whole, noise_frames(frames, 7), fps=CLIP_FPS)
    streamable = path.with_name("streamable.mp4")
    with (
        av.open(str(whole)) as source,
        av.open(str(streamable), "w", options={"movflags": "faststart"}) as copy,
    ):
        stream = copy.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                copy.mux(packet)
    data = streamable.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    whole.unlink()
    streamable.unlink()


def test_truncated_video_is_built_with_a_warning_naming_it(tmp_path: Path) -> None:
    source = tmp_path / "data"
    write_clips(source, count=1, frames=4)
    short = source / UNSUPERVISED / "video_0002_x.mp4"
    write_truncated(short, frames=40)

    report = build_dataset(source, progress=False)
    assert report.ok, report.problems()  # built: a short video is still usable data
    assert [item for item, _ in report.warnings] == [f"{UNSUPERVISED}/video_0002_x.mp4"]
    assert str(short) in report.warnings[0].reason and "truncated" in report.warnings[0].reason
    assert "1 warning(s)" in report.problems()

    reused = build_dataset(source, progress=False)  # the short extraction is kept: say so again
    assert reused.frames_written == 0
    assert len(reused.warnings) == 1 and str(short) in reused.warnings[0].reason
