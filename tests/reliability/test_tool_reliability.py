"""Reliability of the user-facing tools (issue 12): each case as a user meets it, on tiny inputs.

Scoring values no critic can produce, a mistyped critic weights path on the demo, output paths
that cannot be written (reports, plots, exports), and videos the enhancer used to refuse or
shorten in silence: truncated, odd-sized, with sound. Add new cases here, so the list only grows.

Unwritable outputs come in two kinds: a path under a regular file (``file.txt/out.json``), which
fails for everyone, and a read-only folder — chmod 555, which root may still write into, so under
root the permission check is told that folder is read-only, as a read-only mount tells it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from config_helpers import compose_config
from fixture_files import SAMPLE_SUBMISSION
from hydra.utils import instantiate
from model_helpers import write_checkpoint
from omegaconf import OmegaConf

import vqe.config_root  # noqa: F401  (registers ${vqe.mac_budget:}, which the configs use)
from vqe.baseline.tone import tone_map_video
from vqe.cli import bradley_terry, score, score_outputs, temporal, tournament
from vqe.cli.enhance import main as enhance_main
from vqe.cli.export import main as export_main
from vqe.critics.vqa import load_vqa
from vqe.critics.weights import CriticWeightsMissingError
from vqe.models.loading import enhancer_from_preset
from vqe.schema import UNSUPERVISED_METRICS_CSV
from vqe.video import VideoWarning, read_frames

REPO = Path(__file__).resolve().parents[2]
SAMPLE = SAMPLE_SUBMISSION
CHEAP_CRITICS = [
    "--allow-random-critics",
    "--dover-num-frames",
    "2",
    "--dover-technical-clips",
    "1",
]
AUDIO_RATE = 16000


# --------------------------------------------------------------------------- tiny inputs


def random_frames(count: int, height: int, width: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(count)]


def write_clip(
    path: Path, frames: list[np.ndarray], audio: bool = False, faststart: bool = False
) -> Path:
    """An H.264 mp4 at 30 fps (yuv444p when a side is odd), with a mono AAC tone if ``audio``;
    ``faststart`` puts the index first, as a download that can be cut short has it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", options={"movflags": "faststart"} if faststart else {}) as out:
        video = out.add_stream("libx264", rate=30)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv444p" if video.height % 2 or video.width % 2 else "yuv420p"
        sound = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if audio else None
        for image in frames:
            out.mux(video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(video.encode())
        if sound is not None:
            samples = np.sin(np.arange(AUDIO_RATE * len(frames) // 30) / 5).astype(np.float32)
            for start in range(0, len(samples), 1024):
                chunk = av.AudioFrame.from_ndarray(
                    0.3 * samples[None, start : start + 1024], format="fltp", layout="mono"
                )
                chunk.sample_rate, chunk.pts = AUDIO_RATE, start
                chunk.time_base = Fraction(1, AUDIO_RATE)
                out.mux(sound.encode(chunk))
            out.mux(sound.encode())
    return path


def truncate_at_a_packet(path: Path, keep: int) -> None:
    """Cut the file after its ``keep``-th video packet: it then decodes cleanly, but short."""
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(container.streams.video[0]) if p.size]
    position, size = packets[keep - 1]
    path.write_bytes(path.read_bytes()[: position + size])


def streams_of(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        return {
            "size": (video.codec_context.width, video.codec_context.height),
            "pix_fmt": video.codec_context.pix_fmt,
            "frames": sum(1 for _ in container.decode(video)),
            "audio": [
                (stream.codec_context.name, sum(1 for p in container.demux(stream) if p.size))
                for stream in container.streams.audio
            ],
        }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("ckpt")
    return write_checkpoint(enhancer_from_preset("tiny").eval(), "tiny", folder / "tiny.ckpt")


def enhance(checkpoint: Path, dir_in: Path, dir_out: Path) -> int:
    return enhance_main(["--ckpt", str(checkpoint), "--dir_in", str(dir_in), "--dir_out",
                         str(dir_out), "--device", "cpu", "--no-progress"])  # fmt: skip


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    """The tool's stderr, which must be a single ``error: …`` line (no traceback)."""
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


# --------------------------------------------------------------------------- item 8: score.py


@pytest.fixture
def submission(tmp_path: Path) -> Path:
    if not (SAMPLE / UNSUPERVISED_METRICS_CSV).is_file():
        pytest.fail(f"sample submission fixture missing at {SAMPLE}")
    folder = tmp_path / "submission"
    shutil.copytree(SAMPLE, folder)
    for path in folder.iterdir():
        path.chmod(0o644)
    return folder


def set_first_value(folder: Path, file_name: str, column: int, text: str) -> None:
    """Set cell ``column`` (0 = video_i) of the first data row (line 2)."""
    path = folder / file_name
    lines = path.read_text().splitlines()
    cells = lines[1].split(",")
    cells[column] = text
    lines[1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("file_name", "column", "text"),
    [
        (UNSUPERVISED_METRICS_CSV, 1, "5.0"),  # m_1 = p is in [0, 1]
        (UNSUPERVISED_METRICS_CSV, 3, "-1.5"),  # m_3, an auxiliary score, is in [-1, 1]
        ("metrics_supervised.csv", 1, "6.5"),  # an RMSE on the (v − 128)/128 scale is ≤ 2
    ],
)
def test_score_warns_about_impossible_values_and_strict_refuses_them(
    submission: Path, file_name: str, column: int, text: str, capsys: pytest.CaptureFixture[str]
) -> None:
    set_first_value(submission, file_name, column, text)
    path = submission / file_name
    assert score.main(["--results", str(submission)]) == 0
    out = capsys.readouterr().out
    warning = next(line for line in out.splitlines() if line.startswith("warning:"))
    assert str(path) in warning and f"={text} (outside" in warning and "--strict" in warning

    assert score.main(["--results", str(submission), "--strict"]) == 1
    error = one_line_error(capsys)
    assert str(path) in error and f"={text} (outside" in error


def test_score_of_the_sample_submission_has_no_range_warning(
    submission: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert score.main(["--results", str(submission), "--strict"]) == 0
    out = capsys.readouterr().out
    assert "warning" not in out and "score  11.2965" in out


# --------------------------------------------------------------------------- item 8: critics


def compose_demo(*overrides: str):
    cfg = compose_config("vqe", overrides)
    assert cfg.demo and cfg.allow_random_critics  # the demo: random critics allowed
    return cfg


@pytest.mark.parametrize("group", ["model_vqa", "model_dover"])
def test_a_mistyped_critic_weights_path_is_refused_even_on_the_demo(
    tmp_path: Path, group: str
) -> None:
    typo = tmp_path / "wieghts" / "critic.ckpt"
    cfg = compose_demo(f"{group}.weights={typo}")
    with pytest.raises(Exception, match=f"{typo} does not exist. Fix {group}.weights \\(get "):
        instantiate(OmegaConf.to_container(cfg[group], resolve=True))
    folder = tmp_path / "a_folder"
    folder.mkdir()
    with pytest.raises(CriticWeightsMissingError, match=f"{folder} is not a file"):
        load_vqa(folder, allow_random=True)


def test_the_demo_without_weights_still_gets_announced_random_critics() -> None:
    cfg = compose_demo()
    with pytest.warns(RuntimeWarning, match="no weights file was given; using RANDOM"):
        instantiate(OmegaConf.to_container(cfg.model_vqa, resolve=True))


# --------------------------------------------------------------------------- item 9: outputs


@pytest.fixture(params=["under_a_file", "read_only_folder"])
def unwritable(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[str], Path]:
    """A function naming an output path the tools cannot write."""
    if request.param == "under_a_file":
        blocker = tmp_path / "file.txt"
        blocker.write_text("a file where a folder should be")
        return lambda name: blocker / name
    folder = tmp_path / "read_only"
    folder.mkdir()
    folder.chmod(0o555)
    request.addfinalizer(lambda: folder.chmod(0o755))
    if os.geteuid() == 0:  # root may write there; report it as a read-only mount reports itself
        real_access = os.access
        monkeypatch.setattr(
            "vqe.output_paths.os.access",
            lambda path, mode: (
                not (mode & os.W_OK and Path(path) == folder) and real_access(path, mode)
            ),
        )
    return lambda name: folder / name


@pytest.fixture
def votes(tmp_path: Path) -> Path:
    path = tmp_path / "votes.csv"
    path.write_text("left,right,vote\na,b,1\na,b,2\nb,a,4\na,b,3\nb,a,5\n")
    return path


def tool_arguments(tool: str, tmp_path: Path, votes: Path, target: Path) -> list[str]:
    """The command line of ``tool`` writing ``target``; its other outputs go to ``tmp_path``."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    video = str(tmp_path / "missing.mp4")  # the path check must come before any video is read
    return {
        "score --json": ["--results", str(SAMPLE), "--json", str(target)],
        "bradley_terry --json": [str(votes), "--plot", str(tmp_path / "bt.png"), "--json",
                                 str(target)],
        "bradley_terry --plot": [str(votes), "--plot", str(target)],
        "temporal --profile": [video, video, "--profile", str(target)],
        "tournament --json": ["--methods", f"m={empty}", "--inputs", str(empty), "--json",
                              str(target), *CHEAP_CRITICS],
        "tournament --plot": ["--methods", f"m={empty}", "--inputs", str(empty), "--plot",
                              str(target), *CHEAP_CRITICS],
        "score_outputs --out": ["--enhanced", str(empty), "--data-root", str(empty), "--out",
                                str(target), *CHEAP_CRITICS],
    }[tool]  # fmt: skip


TOOLS = {
    "score --json": score.main,
    "bradley_terry --json": bradley_terry.main,
    "bradley_terry --plot": bradley_terry.main,
    "temporal --profile": temporal.main,
    "tournament --json": tournament.main,
    "tournament --plot": tournament.main,
    "score_outputs --out": score_outputs.main,
}


@pytest.mark.parametrize("tool", TOOLS)
def test_an_unwritable_output_gets_one_line_before_the_work(
    tool: str,
    tmp_path: Path,
    votes: Path,
    unwritable: Callable[[str], Path],
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = unwritable("out.json" if "json" in tool else "out")
    code = TOOLS[tool](tool_arguments(tool, tmp_path, votes, target))
    error = one_line_error(capsys)
    assert code == 1
    assert f"{tool.split()[1]} {target}: cannot be" in error and "choose another" in error
    assert not (tmp_path / "bt.png").exists()  # refused before the analysis, not after


@pytest.mark.parametrize(
    ("export_format", "name", "converter"),
    [("coreml", "m.mlpackage", "vqe.export.coreml.convert"),
     ("onnx", "m.onnx", "vqe.export.onnx._export_graph")],
)  # fmt: skip
def test_export_to_an_unwritable_folder_is_refused_before_converting(
    export_format: str,
    name: str,
    converter: str,
    checkpoint: Path,
    unwritable: Callable[[str], Path],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def conversion_started(*args: object, **kwargs: object) -> None:
        raise AssertionError("the conversion started before the output path was checked")

    monkeypatch.setattr(converter, conversion_started)
    out = unwritable(name)
    code = export_main([str(checkpoint), "--format", export_format, "--out", str(out),
                        "--height", "32", "--width", "64"])  # fmt: skip
    error = one_line_error(capsys)
    assert code == 1 and f"--out {out}: cannot be" in error and "choose another --out" in error
    hidden = [path for path in out.parent.parent.rglob(".*") if path.name.startswith(".m")]
    assert hidden == []  # no temporary name left behind, or named


# --------------------------------------------------------------------------- items 8, 10: videos


def test_a_truncated_input_is_enhanced_with_a_note_naming_it(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_clip(
        tmp_path / "in" / "video_0001_x.mp4", random_frames(12, 32, 48), False, True
    )
    truncate_at_a_packet(source, keep=5)
    with pytest.warns(VideoWarning, match="decoded 5 of the 12 frames"):
        assert len(list(read_frames(source))) == 5

    assert enhance(checkpoint, tmp_path / "in", tmp_path / "out") == 0
    out = capsys.readouterr().out
    assert f"{source}: decoded 5 of the 12 frames its container declares" in out
    assert streams_of(tmp_path / "out" / source.name)["frames"] == 5


def test_an_odd_sized_input_is_enhanced_at_its_own_size(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_clip(tmp_path / "in" / "video_0001_x.mp4", random_frames(4, 19, 33))
    assert enhance(checkpoint, tmp_path / "in", tmp_path / "out") == 0
    assert f"{source}: 33×19 has an odd side" in capsys.readouterr().out
    output = streams_of(tmp_path / "out" / source.name)
    assert output["size"] == (33, 19) and output["frames"] == 4


def test_the_input_audio_is_kept_and_silent_even_inputs_stay_official(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = random_frames(6, 32, 48)
    loud = write_clip(tmp_path / "in" / "video_0001_x.mp4", frames, audio=True)
    silent = write_clip(tmp_path / "in" / "video_0002_x.mp4", frames)
    assert enhance(checkpoint, tmp_path / "in", tmp_path / "out") == 0
    assert "notes" not in capsys.readouterr().out

    kept = streams_of(tmp_path / "out" / loud.name)
    assert kept["audio"] == streams_of(loud)["audio"] and kept["audio"]  # every packet copied
    plain = streams_of(tmp_path / "out" / silent.name)
    assert plain == {"size": (48, 32), "pix_fmt": "yuv420p", "frames": 6, "audio": []}


def test_the_baseline_keeps_odd_sizes_and_audio_like_the_enhancer(tmp_path: Path) -> None:
    odd = write_clip(tmp_path / "odd.mp4", random_frames(4, 19, 33))
    loud = write_clip(tmp_path / "loud.mp4", random_frames(6, 32, 48), audio=True)
    with pytest.warns(VideoWarning, match="33×19 has an odd side"):
        assert tone_map_video(odd, tmp_path / "odd_out.mp4") == 4
    assert streams_of(tmp_path / "odd_out.mp4")["size"] == (33, 19)
    tone_map_video(loud, tmp_path / "loud_out.mp4")
    kept = streams_of(tmp_path / "loud_out.mp4")["audio"]
    assert kept and kept == streams_of(loud)["audio"]
