"""Pairwise preference: which of two methods people (or the VQA critic) prefer, and the ranking
that follows — kept apart from the official score and the metrics of :mod:`vqe.metrics`.

- :mod:`~vqe.preference.bradley_terry`: human votes → Bradley–Terry (Davidson) scores with
  intervals; :mod:`~vqe.preference.bradley_terry_plot` their interval plot;
- :mod:`~vqe.preference.p910`: the P.910 toolkit's CCR ratings as pairwise votes;
- :mod:`~vqe.preference.tournament`: the critics' tournament, methods ranked by the frozen VQA's
  pairwise preference instead of people's.

The commands are ``vqe bradley-terry``, ``vqe p910`` and ``vqe tournament`` (:mod:`vqe.cli`).
Import the sub-modules directly; this file stays empty so that reading votes does not pull in
torch and the critics.
"""
