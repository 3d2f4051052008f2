"""Metrics: submission CSVs and the run layout (``results``), the official objective score,
full-reference quality (PSNR, SSIM, LPIPS), Bradley–Terry analysis of human votes and temporal
measures (flicker, warping error).

Import the sub-modules directly (``from vqe.metrics.score import score_submission``); this
package file stays empty so that importing one metric does not pull in the others' dependencies.
"""
