"""Metrics: submission CSVs and the run layout (``results``), the official objective score,
full-reference quality (PSNR, SSIM, LPIPS), temporal measures (flicker, warping error) and the
scoring of any method's output videos (``method_scores``); their commands are in :mod:`vqe.cli`.
Pairwise preference (human votes, the critics' tournament) is :mod:`vqe.preference`.

Import the sub-modules directly (``from vqe.metrics.score import score_submission``); this
package file stays empty so that importing one metric does not pull in the others' dependencies.
"""
