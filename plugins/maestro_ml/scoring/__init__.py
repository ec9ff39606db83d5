"""Scoring open tasks with the serving champions: what ``score_open_tasks`` runs every hour.

* ``open_tasks.py``: which tasks are open (and unassigned) at the scoring time, read from the lake's state,
  and their candidates, by the training sets' own candidate rule (``features.training_sets.eligible_candidates``).
* ``champions.py``: each model's ``champion``, resolved by alias once per run and loaded once, with the
  feature service it declares and the check that the service provides every input of its signature.
* ``score.py``: features from the Feast online store in batches, the ranker's top-k with its three largest
  LightGBM contributions per recommended user, the duration champion's median and 80% / 90% intervals.
* ``publish.py``: the lake table (one file per scoring hour, atomic; a re-run replaces it) and the push to the
  online store (``task_recommendations_v1``) with the run's own, newer event timestamp.
"""
