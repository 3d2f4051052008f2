"""Metrics: submission CSVs, the official objective score, Bradley–Terry analysis of human
votes and temporal (flicker) measures.

Import the sub-modules directly (``from vqe.metrics.score import score_submission``); this
package file stays empty so that importing one metric does not pull in the others' dependencies.
"""
