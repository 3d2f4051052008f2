"""vqe.quiet: the entry points' warning filters and one-line warnings, checked in a fresh
interpreter (the filters are process-wide, and pytest installs its own display)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from vqe.torch_files import load_error_reason


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_warnings_print_as_one_line_and_the_random_critic_one_once() -> None:
    result = run_python(
        """
        import logging, warnings
        from vqe.quiet import install_warning_filters

        install_warning_filters()
        from vqe.critics.vqa import build_vqa

        for _ in range(2):  # the critic built twice in one run (training, then test critics)
            build_vqa(None, allow_random_critics=True)
        warnings.warn("a third party's\\nwarning on two lines", UserWarning)
        """
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    random = [line for line in lines if "RANDOM weights" in line]
    assert len(random) == 1, lines  # once, and as a log line only: not also by log.warning
    # Ours: the category and message only, no file, line or source line.
    assert random[0].startswith("RuntimeWarning: VQA: no weights file was given; using RANDOM")
    assert random[0].endswith("set model_vqa.weights.")
    third_party = [line for line in lines if "third party" in line]
    assert third_party == ["<string>:10: UserWarning: a third party's warning on two lines"]
    assert len(lines) == 2, lines  # nothing else: no source lines repeated under them


def test_expected_third_party_notices_are_dropped_and_others_kept() -> None:
    result = run_python(
        """
        import logging, warnings
        from vqe.quiet import install_warning_filters

        install_warning_filters()
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        tips = logging.getLogger("pytorch_lightning.utilities.rank_zero")
        tips.info("💡 Tip: For seamless cloud uploads and versioning, try installing litmodels")
        tips.info("GPU available: False, used: False")
        coreml = logging.getLogger("coremltools")
        coreml.warning("Torch version 2.14.1 has not been tested with coremltools. You may run "
                       "into unexpected errors.")
        coreml.warning("scikit-learn version 1.9.1 is not supported. Minimum required version: "
                       "0.17.")
        coreml.warning("something coremltools wants to say")

        import pytorch_lightning.loops.fit_loop as fit_loop  # warn as if from Lightning's module
        warnings.warn_explicit(
            "The 'train_dataloader' does not have many workers which may be a bottleneck.",
            UserWarning, fit_loop.__file__, 1, module="pytorch_lightning.loops.fit_loop",
        )
        warnings.warn_explicit(
            "The 'train_dataloader' has a problem nobody expected.",
            UserWarning, fit_loop.__file__, 2, module="pytorch_lightning.loops.fit_loop",
        )
        """
    )
    assert result.returncode == 0, result.stderr
    err = result.stderr
    assert "GPU available" in err and "something coremltools wants to say" in err
    assert "nobody expected" in err
    for dropped in ("💡 Tip", "has not been tested", "is not supported", "many workers"):
        assert dropped not in err, err


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (
            RuntimeError(
                "Weights only load failed. In PyTorch 2.6, we changed the default value of the "
                "`weights_only` argument.\nPlease file an issue with the following so that we "
                "can make `weights_only=True` compatible with your use case: WeightsUnpickler "
                "error: \n\nUnsupported operand 118\n\nCheck the documentation of torch.load."
            ),
            "RuntimeError: Unsupported operand 118",
        ),
        (
            RuntimeError(
                'Expected hasRecord("version") to be true, but got false.  (Could this error '
                "message be improved?  If so, please report an enhancement request to PyTorch.)"
            ),
            'RuntimeError: Expected hasRecord("version") to be true, but got false.',
        ),
        (EOFError(), "EOFError"),
        (ValueError("x" * 500), "ValueError: " + "x" * 199 + "…"),
    ],
)
def test_load_errors_are_quoted_by_their_cause_only(error: Exception, reason: str) -> None:
    assert load_error_reason(error) == reason
