"""The study folder and its ``study.json``.

Layout of a study folder::

    STUDY/study.json           methods, videos, design settings, tokens
    STUDY/study.sqlite         raters, assignments, votes (vqe.study.db; WAL mode)
    STUDY/videos/METHOD/NAME   copies of the method videos (the only media the server serves,
    STUDY/gold/NAME            with the degraded gold copies)

``study.json`` is plain JSON that a user may edit, so :func:`read_config` checks every key
before anything uses it — method names as in :data:`METHOD_NAME`, videos plain file names with a
suffix of :data:`VIDEO_SUFFIXES` (no folders, no ``..``: they become paths), integers that are
integers, ``gold_rate`` in [0, 1], URL-safe tokens that differ, no unknown keys — and refuses a
bad one with a one-line :class:`StudyError` naming the file and the key. Nothing in the file is
ever imported or executed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

CONFIG_NAME = "study.json"
DB_NAME = "study.sqlite"
VIDEOS_DIR = "videos"
GOLD_DIR = "gold"
#: Method names appear in folder names and CSV cells: keep them plain.
METHOD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,63}$")
#: Video file names the study accepts (browsers play these containers).
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".m4v")
FORMAT_VERSION = 1
#: The secrets in the URLs (``secrets.token_urlsafe`` makes them): nothing a URL would alter.
TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class StudyError(ValueError):
    """A study cannot be created, opened or served; the message names the file or value."""


@dataclass(frozen=True)
class StudyConfig:
    methods: tuple[str, ...]
    videos: tuple[str, ...]  # file names, the same in every method folder
    repeats: int  # how many votes each (video, method pair) gets over the whole study
    per_rater: int  # regular comparisons per rater (≤ the number of distinct comparisons)
    gold_rate: float  # gold questions per regular comparison
    gold_source: str  # the method whose videos the gold questions show
    seed: int
    token: str  # in every rater URL: /s/TOKEN/
    admin_token: str  # results and export over HTTP: /admin/TOKEN/
    version: int = FORMAT_VERSION

    @property
    def comparisons(self) -> int:
        """Distinct regular comparisons: videos × method pairs."""
        m = len(self.methods)
        return len(self.videos) * m * (m - 1) // 2


def config_path(root: Path) -> Path:
    return Path(root) / CONFIG_NAME


def write_config(root: Path, config: StudyConfig) -> Path:
    path = config_path(root)
    path.write_text(json.dumps(asdict(config), indent=2) + "\n")
    return path


def read_config(root: str | Path) -> StudyConfig:
    """The study's ``study.json``, every key checked; a one-line :class:`StudyError` naming the
    file and the key otherwise."""
    path = config_path(Path(root))
    if not path.is_file():
        raise StudyError(
            f"{path}: not found; {root} is not a study folder (make one with "
            "`vqe study create`)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError, OSError) as error:  # JSON, UTF-8 or read errors
        reason = "nested too deeply" if isinstance(error, RecursionError) else error
        raise StudyError(f"{path}: not valid JSON ({reason}); restore it from a backup") from error
    return _validated(path, data)


def _validated(path: Path, data: object) -> StudyConfig:
    if not isinstance(data, dict):
        raise StudyError(f"{path}: must hold a JSON object of study settings")
    version = data.get("version", FORMAT_VERSION)
    if type(version) is not int or version != FORMAT_VERSION:
        raise StudyError(f"{path}: format version {version}, this vqe reads {FORMAT_VERSION}")
    known = [f.name for f in fields(StudyConfig)]
    unknown = sorted(set(data) - set(known), key=str)
    if unknown:
        raise StudyError(f"{path}: unknown key {unknown[0]!r}; a study.json holds {known}")
    missing = [name for name in known if name != "version" and name not in data]
    if missing:
        raise StudyError(f"{path}: key {missing[0]!r} is missing")

    def bad(key: str, problem: str) -> StudyError:
        return StudyError(f"{path}: key {key!r} {problem}, got {data[key]!r:.80}")

    methods = _names(data["methods"], lambda m: bool(METHOD_NAME.match(m)))
    if methods is None:
        raise bad("methods", "must be a list of method names (letters, digits, _ . + -)")
    if len(methods) < 2 or len(set(methods)) < len(methods):
        raise bad("methods", "must name at least 2 methods, none twice")
    if type(data["videos"]) is not list:
        raise bad("videos", "must be a list of plain video file names")
    videos = _names(data["videos"], _plain_video_name)
    if videos is None:
        raise bad("videos", f"must be plain video file names (no folders; {VIDEO_SUFFIXES})")
    if not videos or len(set(videos)) < len(videos):
        raise bad("videos", "must name at least one video, none twice")
    for key in ("repeats", "seed"):
        if type(data[key]) is not int or (key == "repeats" and data[key] < 1):
            raise bad(key, "must be an integer ≥ 1" if key == "repeats" else "must be an integer")
    comparisons = len(videos) * len(methods) * (len(methods) - 1) // 2
    per_rater = data["per_rater"]
    if type(per_rater) is not int or not 1 <= per_rater <= comparisons:
        raise bad("per_rater", f"must be an integer 1…{comparisons} (videos × method pairs)")
    gold_rate = data["gold_rate"]
    if type(gold_rate) not in (int, float) or not 0 <= gold_rate <= 1:  # also refuses NaN
        raise bad("gold_rate", "must be a number in [0, 1]")
    if data["gold_source"] not in methods:
        raise bad("gold_source", f"must be one of the methods {list(methods)}")
    for key in ("token", "admin_token"):
        if not isinstance(data[key], str) or not TOKEN.match(data[key]):
            raise bad(key, "must be URL-safe text (letters, digits, _ -), 1–128 characters")
    if data["token"] == data["admin_token"]:  # else every rater could open the results
        raise StudyError(f"{path}: keys 'token' and 'admin_token' must differ")
    return StudyConfig(
        methods=methods, videos=videos, repeats=data["repeats"], per_rater=per_rater,
        gold_rate=float(gold_rate), gold_source=data["gold_source"], seed=data["seed"],
        token=data["token"], admin_token=data["admin_token"], version=version,
    )


def _names(value: object, valid: Callable[[str], bool]) -> tuple[str, ...] | None:
    """``value`` as a tuple of text, if it is a JSON list of text that ``valid`` accepts."""
    if type(value) is not list or not all(isinstance(v, str) and valid(v) for v in value):
        return None
    return tuple(value)


def _plain_video_name(name: str) -> bool:
    """A file name the study folder can hold: no folder part, a known video suffix."""
    return (
        0 < len(name) <= 255
        and not any(c in name for c in "/\\\x00")
        and name not in (".", "..")
        and PurePosixPath(name).suffix.lower() in VIDEO_SUFFIXES
    )


def method_video(root: Path, method: str, name: str) -> Path:
    return Path(root) / VIDEOS_DIR / method / name


def gold_video(root: Path, name: str) -> Path:
    return Path(root) / GOLD_DIR / name
