"""The runnable-everywhere baseline: a smoothed global tone and colour curve per frame
(:mod:`vqe.baseline.tone`), run over a folder of videos (:mod:`vqe.batch_jobs`)."""
