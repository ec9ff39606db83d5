"""Whether a candidate may serve: gates computed on one fair holdout, in one process, for candidate and champion.

* ``gates``: the gate table. The primary metric must improve with the lower bound of a paired
  bootstrap 95% interval of the per-decision difference above a margin (NDCG@5 for the ranker, absolute
  error for duration); guard metrics must not regress beyond a tolerance; the candidate must load in a
  clean process and predict without NaN. A failed gate is a decision (``Decision.promote`` is False),
  not an error.

The alias moves and the audit trail are the registry's (``maestro_ml.registry.aliases``, ``.audit``).
"""
