"""Reliability against hostile or unlucky inputs: file names that are not UTF-8,
writes cut short by a full disk, a submission zip that inflates far beyond its size, and video
ids that look like paths. Each case as a user meets it, on tiny inputs; the builder runs as the
real command where a crash would take the test runner down with it.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import tracemalloc
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from fixture_files import SAMPLE_SUBMISSION
from test_data_reliability import CLIP_FPS, UNSUPERVISED, command_env, run_build, write_clips
from tqdm import tqdm
from worker_crash_job import crash_on_bad_name

from vqe import schema
from vqe.batch_jobs import printable
from vqe.cli.score import main as score_main
from vqe.data.input_cache import write_features, write_scores
from vqe.dataprep.build import _results, build_dataset
from vqe.dataprep.extract import Extraction, Settings, _write_marker
from vqe.dataprep.index import IndexedVideo, write_index
from vqe.dataprep.layout import Item
from vqe.metrics import score

#: A video name with a byte that is not UTF-8 (Latin-1 "ÿ", as an old archiver writes it); it
#: sorts first, so a crash on it used to take down every video queued behind it.
BAD_VIDEO = b"clip_\xff03_x.mp4"
BAD_SHOWN = "clip_\\xff03_x.mp4"  # how messages show it: printable, the byte still visible
FRAMES = 4  # per clip at CLIP_FPS; the default 30 fps extraction gives 6
ROWS_PER_CLIP = FRAMES * 30 // CLIP_FPS

needs_bytes_names = pytest.mark.skipif(
    sys.platform in ("win32", "darwin"), reason="the file system must accept any bytes in names"
)


def add_bad_named_clip(source: Path) -> Path:
    """A playable clip whose file name is not UTF-8 (written under a good name, then renamed)."""
    write_clips(source / "scratch", count=1, frames=FRAMES)
    clip = next((source / "scratch").rglob("*.mp4"))
    bad = source / UNSUPERVISED / os.fsdecode(BAD_VIDEO)
    os.rename(clip, bad)
    shutil.rmtree(source / "scratch")
    return bad


def index_table(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, encoding="utf-8", dtype=str)  # strict UTF-8: every row is text


# --------------------------------------------------------------------------- item 1: file names


@needs_bytes_names
@pytest.mark.parametrize("workers", [1, 2])
def test_a_non_utf8_video_name_is_listed_and_the_good_videos_indexed(
    tmp_path: Path, workers: int
) -> None:
    source = tmp_path / "data"
    write_clips(source, count=2, frames=FRAMES)
    add_bad_named_clip(source)

    result = run_build(f"source_dir={source}", f"workers={workers}", cwd=tmp_path)
    assert result.returncode == 1, (result.returncode, result.stderr[-3000:])  # not 139
    named = [line for line in result.stdout.splitlines() if BAD_SHOWN in line]
    assert len(named) == 1 and "rename" in named[0], result.stdout
    assert "worker" not in result.stdout  # no good video blamed for a crashed worker
    table = index_table(source / schema.TRAIN_CSV)
    assert sorted(set(table[schema.VIDEO_ID])) == ["video_0001", "video_0002"]
    assert len(table) == 2 * ROWS_PER_CLIP


@needs_bytes_names
def test_an_index_root_whose_name_is_not_utf8_still_builds(tmp_path: Path) -> None:
    """Frames may go anywhere the file system allows; only the relative paths enter the CSV."""
    source, out = tmp_path / "data", tmp_path / os.fsdecode(b"fr\xe4mes")
    write_clips(source, count=2, frames=FRAMES)
    script = (
        "import sys; from pathlib import Path; from vqe.dataprep.build import build_dataset; "
        "report = build_dataset(Path(sys.argv[1]), out_dir=Path(sys.argv[2]), progress=False); "
        "sys.exit(0 if report.ok else 1)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(source), str(out)],
        capture_output=True,
        timeout=120,
        check=False,
        env=command_env(),
    )
    assert result.returncode == 0, (result.returncode, result.stderr[-3000:])
    table = index_table(out / schema.TRAIN_CSV)
    assert len(table) == 2 * ROWS_PER_CLIP
    assert all((out / name).is_file() for name in table[schema.IMG_SOURCE])


@needs_bytes_names
def test_non_utf8_synthetic_names_are_listed_and_the_rest_indexed(tmp_path: Path) -> None:
    """A frame or clip folder name that the UTF-8 index cannot hold used to crash the index
    write after every video was extracted, losing the whole index."""
    source = tmp_path / "data"
    write_clips(source, count=2, frames=FRAMES)
    synthetic = source / "train/supervised/synthetic"
    image = np.zeros((8, 8, 3), np.uint8)
    for folder, frame in ((b"video_0001", b"\xe91.png"), (b"video_\xe92", b"1.png")):
        for side in ("x", "y"):
            path = synthetic / os.fsdecode(folder) / side / os.fsdecode(frame)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(_png(image))

    report = build_dataset(source, progress=False)
    reasons = dict(report.failed)
    assert set(reasons) == {
        "train/supervised/synthetic/video_0001/x",
        "train/supervised/synthetic/video_\\xe92/x",
    }
    assert "\\xe91.png" in reasons["train/supervised/synthetic/video_0001/x"]
    assert all("rename" in reason for reason in reasons.values())
    assert "\\xe9" in report.problems()
    assert all(line.isprintable() for line in report.problems().splitlines())
    table = index_table(source / schema.TRAIN_CSV)
    assert sorted(set(table[schema.VIDEO_ID])) == ["video_0001", "video_0002"]
    assert set(table[schema.SUBSET]) == {schema.SUBSET_UNSUPERVISED}


def test_messages_show_any_name_on_one_printable_line() -> None:
    assert printable("video_0001_x.mp4 …×é") == "video_0001_x.mp4 …×é"  # as it is
    assert printable(os.fsdecode(b"clip_\xff03_x.mp4")) == "clip_\\xff03_x.mp4"
    assert printable("two\nlines\x1b[2J") == "two\\nlines\\x1b[2J"


def _png(image: np.ndarray) -> bytes:
    ok, encoded = cv2.imencode(".png", image)
    assert ok
    return encoded.tobytes()


@pytest.mark.skipif(not hasattr(signal, "SIGSEGV"), reason="needs SIGSEGV")
def test_a_worker_crash_fails_only_the_item_that_crashes(tmp_path: Path) -> None:
    """A crashing worker breaks the pool; the items it took down with it are run again."""
    names = ["good_1", "good_2", "bad", "good_3", "good_4", "good_5"]
    items = [
        Item("train", schema.SUBSET_UNSUPERVISED, name, f"{UNSUPERVISED}/{name}_x.mp4",
             tmp_path / f"{name}_x.mp4", None)
        for name in names
    ]  # fmt: skip
    settings = Settings(index_root=tmp_path, fps=30.0, overwrite=False)
    with tqdm(disable=True) as bar:
        results = list(_results(items, settings, 2, bar, job=crash_on_bad_name))
    assert sorted(result.item.video_id for result in results) == sorted(names)  # each once
    failed = {result.item.video_id: result.failure for result in results if result.failure}
    assert list(failed) == ["bad"] and "died" in failed["bad"].reason
    assert all(result.video is not None for result in results if result.item.video_id != "bad")


def test_an_existing_index_that_is_not_utf8_is_kept_with_a_reason(tmp_path: Path) -> None:
    """The rows of an index are compared with the old file before replacing it: an old file that
    is not UTF-8 text (another tool's Latin-1 CSV) used to crash the build at the very end."""
    source = tmp_path / "data"
    write_clips(source, count=1, frames=FRAMES)
    index = source / schema.TRAIN_CSV
    index.write_bytes(b"img_source\nvid\xe9o/frame_0001.png\n")
    kept = build_dataset(source, progress=False)
    assert not kept.ok and index.read_bytes() == b"img_source\nvid\xe9o/frame_0001.png\n"
    assert "not a readable index" in kept.problems() and "overwrite=true" in kept.problems()
    assert build_dataset(source, overwrite=True, progress=False).ok
    assert len(index_table(index)) == ROWS_PER_CLIP


# --------------------------------------------------------------------------- item 2: full disk


def _index_video(frames: int) -> IndexedVideo:
    return IndexedVideo(
        "train", "unsupervised", "video_0001", "train/unsupervised/video_0001/x", None, frames,
        48, 64, 30.0,
    )  # fmt: skip


#: file name, how the test writes the old file, what the child writes (``path`` is the file)
#: and the file-size limit that makes that write fail part-way.
FULL_DISK_CASES = {
    "score json": (
        "score.json",
        lambda path: score.write_json(score.score_submission(SAMPLE_SUBMISSION), path),
        "from vqe.metrics.score import score_submission, write_json\n"
        f"report = score_submission({str(SAMPLE_SUBMISSION)!r})\n"
        "write = lambda: write_json(report, path)",
        200,
    ),
    "frame index": (
        schema.TRAIN_CSV,
        lambda path: write_index(path, [_index_video(5)]),
        "from vqe.dataprep.index import IndexedVideo, write_index\n"
        "video = IndexedVideo('train', 'unsupervised', 'video_0001', "
        "'train/unsupervised/video_0001/x', None, 400, 48, 64, 30.0)\n"
        "write = lambda: write_index(path, [video])",
        4096,
    ),
    "extraction marker": (
        "extraction.json",
        lambda path: _write_marker(path, Extraction(30.0, 30.0, 5, 48, 64, 1000, None)),
        "from vqe.dataprep.extract import Extraction, _write_marker\n"
        "write = lambda: _write_marker(path, Extraction(30.0, 30.0, 6, 48, 64, 1200, None))",
        40,
    ),
    "DOVER cache": (
        "dover-key.csv",
        lambda path: write_scores(path, {"a.png": 0.5}),
        "from vqe.data.input_cache import write_scores\n"
        "write = lambda: write_scores(path, {f'f{i:04d}.png': 0.25 for i in range(200)})",
        1024,
    ),
    "feature cache": (
        "vqa-key.npz",
        lambda path: write_features(path, {"a.png": np.ones(512, np.float32)}),
        "import numpy as np\nfrom vqe.data.input_cache import write_features\n"
        "write = lambda: write_features(path, {f'f{i}.png': np.ones(512, np.float32) "
        "for i in range(20)})",
        8192,
    ),
}


@pytest.mark.skipif(sys.platform == "win32", reason="needs RLIMIT_FSIZE")
@pytest.mark.parametrize("case", list(FULL_DISK_CASES))
def test_a_write_cut_short_by_a_full_disk_keeps_the_old_file(tmp_path: Path, case: str) -> None:
    """The child's write fails part-way (RLIMIT_FSIZE, like ENOSPC): the old file stays whole
    under its name and no temporary is left beside it."""
    name, write_old, child_code, limit = FULL_DISK_CASES[case]
    path = tmp_path / name
    write_old(path)
    old = path.read_bytes()
    script = "\n".join(
        [
            "import resource, signal, sys",
            f"path = __import__('pathlib').Path({str(path)!r})",
            child_code,
            "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # fail the write, do not die",
            f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))",
            "try:",
            "    write()",
            "except OSError as error:",
            "    sys.exit(f'refused: {error}')",
        ]
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=command_env(),
    )
    assert result.returncode == 1 and "refused" in result.stderr, result.stderr[-3000:]
    assert path.read_bytes() == old
    assert [p.name for p in tmp_path.iterdir()] == [name]


# --------------------------------------------------------------------------- item 3: zip size


def sample_rows(count: int) -> bytes:
    """``count`` unsupervised rows like the sample submission's (one id repeated: the cap must
    refuse the file before anything looks at ids)."""
    lines = (SAMPLE_SUBMISSION / schema.UNSUPERVISED_METRICS_CSV).read_bytes().splitlines()
    return b"\n".join(lines[1:2] * count) + b"\n"


def write_bomb(path: Path, uncompressed: int) -> None:
    """The sample submission with its unsupervised CSV padded to ``uncompressed`` bytes of rows:
    a few hundred KB on disk."""
    header = (SAMPLE_SUBMISSION / schema.UNSUPERVISED_METRICS_CSV).read_bytes().splitlines()[0]
    chunk = sample_rows(4096)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(
            SAMPLE_SUBMISSION / schema.SUPERVISED_METRICS_CSV, schema.SUPERVISED_METRICS_CSV
        )
        with archive.open(schema.UNSUPERVISED_METRICS_CSV, "w", force_zip64=True) as member:
            member.write(header + b"\n")
            written = len(header) + 1
            while written < uncompressed:
                member.write(chunk)
                written += len(chunk)


def test_a_zip_bomb_is_refused_before_it_is_inflated(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bomb = tmp_path / "submission.zip"
    write_bomb(bomb, 24 << 20)
    assert bomb.stat().st_size < 1 << 20  # small on disk
    tracemalloc.start()
    try:
        assert score_main(["--results", str(bomb)]) == 1
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert schema.UNSUPERVISED_METRICS_CSV in error and str(bomb) in error
    with zipfile.ZipFile(bomb) as opened:
        size = opened.getinfo(schema.UNSUPERVISED_METRICS_CSV).file_size
    assert str(size) in error and "--max-bytes" in error
    assert peak < 8 << 20, f"peak {peak / 2**20:.0f} MiB of Python memory"


def test_a_zip_member_whose_header_claims_too_much_is_refused_unread(tmp_path: Path) -> None:
    """The cap reads the sizes the zip declares: a member claiming 4 GB is never opened."""
    archive = tmp_path / "liar.zip"
    shutil.make_archive(str(archive.with_suffix("")), "zip", SAMPLE_SUBMISSION)
    claimed = 4_000_000_000  # the largest a plain (not zip64) header holds
    patch_declared_size(archive, schema.UNSUPERVISED_METRICS_CSV, claimed)
    with pytest.raises(score.SubmissionError) as error:
        score.score_zip(archive)
    assert str(claimed) in str(error.value) and schema.UNSUPERVISED_METRICS_CSV in str(error.value)


def patch_declared_size(archive: Path, member: str, size: int) -> None:
    """Rewrite the uncompressed size that ``member`` declares in its local and its central
    header (the data stays as it is)."""
    data = bytearray(archive.read_bytes())
    with zipfile.ZipFile(archive) as opened:
        local, central = opened.getinfo(member).header_offset, opened.start_dir
    while (
        data[
            central + 46 : central
            + 46
            + int.from_bytes(data[central + 28 : central + 30], "little")
        ]
        != member.encode()
    ):
        lengths = (
            int.from_bytes(data[central + at : central + at + 2], "little") for at in (28, 30, 32)
        )
        central += 46 + sum(lengths)
    declared = size.to_bytes(4, "little")
    data[local + 22 : local + 26] = declared
    data[central + 24 : central + 28] = declared
    archive.write_bytes(bytes(data))


def test_bytes_are_counted_while_reading_too(tmp_path: Path) -> None:
    """Headers can lie: the copy stops once it has read more than the cap allows."""
    stream = io.BytesIO(b"x" * (5 << 20))
    with pytest.raises(score.SubmissionError, match=r"member\.csv.*--max-bytes"):
        score.copy_capped(stream, io.BytesIO(), 1 << 20, "member.csv")
    assert stream.tell() <= (1 << 20) + (1 << 20)  # at most one chunk past the cap


def test_csv_files_and_rows_have_caps_with_an_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = SAMPLE_SUBMISSION / schema.UNSUPERVISED_METRICS_CSV
    size = sample.stat().st_size
    with pytest.raises(score.SubmissionError) as error:
        score.score_submission(SAMPLE_SUBMISSION, max_bytes=size - 1)
    assert f"{sample}: {size} bytes" in str(error.value) and "--max-bytes" in str(error.value)
    assert score_main(["--results", str(SAMPLE_SUBMISSION), "--max-rows", "2999"]) == 1
    error_text = capsys.readouterr().err
    assert "3000" in error_text or "2999" in error_text
    assert "--max-rows" in error_text and str(sample) in error_text
    assert score_main(["--results", str(SAMPLE_SUBMISSION), "--max-bytes", "100K"]) == 1
    assert f"{size} bytes, over the 102400-byte cap" in capsys.readouterr().err
    # The defaults are far above the official submission, which scores as before.
    assert score.DEFAULT_MAX_BYTES >= 16 * size and score.DEFAULT_MAX_ROWS >= 30 * 3000
    assert score_main(["--results", str(SAMPLE_SUBMISSION)]) == 0


def test_zip_members_cannot_escape_the_scratch_folder(tmp_path: Path) -> None:
    archive = tmp_path / "sub" / "submission.zip"
    archive.parent.mkdir()
    escape = f"escaped-{os.getpid()}-{tmp_path.name}.csv"
    with zipfile.ZipFile(archive, "w") as opened:
        for name in (schema.SUPERVISED_METRICS_CSV, schema.UNSUPERVISED_METRICS_CSV):
            opened.write(SAMPLE_SUBMISSION / name, name)
        opened.writestr(f"../{escape}", "video_i,x\n")
        opened.writestr(f"/tmp/{escape}", "video_i,x\n")
    report = score.score_zip(archive)
    assert report.rows[schema.UNSUPERVISED_METRICS_CSV] == 3000
    assert not (tmp_path / escape).exists() and not Path("/tmp", escape).exists()


# --------------------------------------------------------------------------- item 4: video ids


@pytest.mark.parametrize("bad_id", ["../../etc/passwd", "/etc/passwd", "..", "a\\b", "v\x1b[2J"])
def test_subset_mode_refuses_a_video_id_that_is_not_a_plain_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], bad_id: str
) -> None:
    for name in (schema.SUPERVISED_METRICS_CSV, schema.UNSUPERVISED_METRICS_CSV):
        shutil.copy(SAMPLE_SUBMISSION / name, tmp_path / name)
    path = tmp_path / schema.SUPERVISED_METRICS_CSV
    lines = path.read_text().splitlines()
    lines[2] = f'"{bad_id}",0.05'
    path.write_text("\n".join(lines) + "\n")

    assert score_main(["--results", str(tmp_path), "--subset"]) == 1
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1, error
    assert repr(bad_id) in error and "line 3" in error and str(path) in error
