"""Quiet, consistent tool output: one line per warning, none that we expect and cannot act on.

:func:`install_warning_filters` is called first thing by the entry points (``train_vqe.py``,
``export_coreml.py``, the ``vqe`` command). It

* drops the third-party notices that every run of ours triggers and that ask nothing of the
  user — each filter names its message (and module), nothing is silenced wholesale:
  Lightning's "💡 Tip" advertisements, its PossibleUserWarnings about loader workers and the
  logging interval (the demo's loaders and short runs cause them on purpose), a deprecation
  inside Lightning's own pytree code, and coremltools' notices that the installed torch and
  scikit-learn versions are newer than it was tested with (conversion is tested here);
* shows every remaining warning as one log line (logger ``py.warnings``, the one
  :func:`logging.captureWarnings` uses; Hydra's log file gets it too) — ``RuntimeWarning:
  message`` for ours, with the file and line for a third party's — instead of the default two
  lines that repeat the source line;
* shows each random-critic warning once per process, however many times the critic is built.
"""

from __future__ import annotations

import logging
import re
import warnings
from pathlib import Path
from typing import TextIO

#: Logger of the warnings shown as log lines (the name logging.captureWarnings uses).
WARNINGS_LOGGER = "py.warnings"
#: Where our own warnings come from: shown without a file and line.
PACKAGE_DIR = Path(__file__).resolve().parent

#: (message regex, module regex, category) of Python warnings nobody needs to see here.
IGNORED_WARNINGS: tuple[tuple[str, str, type[Warning]], ...] = (
    # PossibleUserWarning; the demo's loaders run in the main process on purpose.
    (r"The '\w+' does not have many workers", r"(pytorch_)?lightning", UserWarning),
    # PossibleUserWarning of short runs (the README's quick settings, tests).
    (r"The number of training batches .* is smaller than the logging interval",
     r"(pytorch_)?lightning", UserWarning),
    # torch deprecated LeafSpec; Lightning's own pytree helper still checks for it.
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", r"(pytorch_)?lightning", FutureWarning),
)  # fmt: skip

#: Message prefixes of the INFO records Lightning logs as advertisements, per logger.
LIGHTNING_TIP = "💡 Tip: For seamless cloud"
LIGHTNING_RANK_ZERO_LOGGERS = (
    "pytorch_lightning.utilities.rank_zero",
    "lightning_fabric.utilities.rank_zero",
    "lightning.pytorch.utilities.rank_zero",
    "lightning.fabric.utilities.rank_zero",
)
#: coremltools logs these on its package logger at import: its tested versions lag behind.
COREMLTOOLS_LOGGER = "coremltools"
COREMLTOOLS_VERSION_NOTICES = re.compile(
    r"\S+ version \S+ has not been tested with coremltools"
    r"|scikit-learn version \S+ is not supported"
)
#: Our warnings that say the same thing each time the critic is built: shown once.
ONCE_WARNINGS = (r".*using RANDOM weights",)


class MessageFilter(logging.Filter):
    """Drops the records whose message matches ``pattern`` (``re.match``: from its start)."""

    def __init__(self, pattern: str | re.Pattern[str]) -> None:
        super().__init__()
        self.pattern = re.compile(pattern) if isinstance(pattern, str) else pattern

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.match(record.getMessage()) is None


def one_line_warning(
    message: Warning | str, category: type[Warning], filename: str, lineno: int
) -> str:
    """A warning as one line: ``Category: message`` for vqe's own, with ``file:line: `` before
    it for a third party's; line breaks inside the message become spaces."""
    text = " ".join(str(message).split())
    try:
        ours = Path(filename).resolve().is_relative_to(PACKAGE_DIR)
    except (OSError, ValueError):
        ours = False
    where = "" if ours else f"{filename}:{lineno}: "
    return f"{where}{category.__name__}: {text}"


def _show_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: TextIO | None = None,
    line: str | None = None,
) -> None:
    """``warnings.showwarning``: one log line (a given ``file`` gets the same line)."""
    text = one_line_warning(message, category, filename, lineno)
    if file is not None:
        try:
            file.write(text + "\n")
        except OSError:  # like the default: a closed stream is not worth another error
            pass
        return
    logging.getLogger(WARNINGS_LOGGER).warning("%s", text)


_TIP_FILTER = MessageFilter(re.escape(LIGHTNING_TIP))
_COREMLTOOLS_FILTER = MessageFilter(COREMLTOOLS_VERSION_NOTICES)


def install_warning_filters() -> None:
    """Install the filters and the one-line display of the module notes. Call it before
    torch, Lightning or coremltools is imported; calling it again changes nothing."""
    for message, module, category in IGNORED_WARNINGS:  # an identical filter is replaced
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    for message in ONCE_WARNINGS:
        warnings.filterwarnings("once", message=message, category=RuntimeWarning)
    for name in LIGHTNING_RANK_ZERO_LOGGERS:  # the same filter object is added only once
        logging.getLogger(name).addFilter(_TIP_FILTER)
    logging.getLogger(COREMLTOOLS_LOGGER).addFilter(_COREMLTOOLS_FILTER)
    warnings.showwarning = _show_warning


__all__ = ["MessageFilter", "install_warning_filters", "one_line_warning"]
