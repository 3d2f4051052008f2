"""A local pairwise preference study in the browser, feeding the Bradley–Terry analysis.

``vqe study`` (:mod:`vqe.cli.study`): ``create`` a study folder from method
folders (videos with the same file names), ``serve`` it to raters, ``export`` the votes as the
CSV ``vqe bradley-terry`` reads, ``report`` the analysis; ``compare`` writes a static,
read-only comparison page of the same folders.

Modules, one job each:

* :mod:`~vqe.study.config` — the study folder layout and ``study.json``;
* :mod:`~vqe.study.create` — copy the videos, make the degraded gold copies, write the config;
* :mod:`~vqe.study.design` — which comparisons a rater gets (balanced, randomised, gold mixed in);
* :mod:`~vqe.study.db` — SQLite (WAL) store of raters, assignments and votes;
* :mod:`~vqe.study.files` — path-safe file lookup (traversal and symlink escapes refused);
* :mod:`~vqe.study.server` — the Starlette app (pages, JSON API, media);
* :mod:`~vqe.study.export` / :mod:`~vqe.study.report` — votes CSV, gold accuracy, BT results page;
* :mod:`~vqe.study.compare_page` — the static comparison page.

The pages are plain HTML/JS/CSS under ``vqe/study/static`` (package data, nothing fetched from
the internet).
"""
