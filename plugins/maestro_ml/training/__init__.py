"""Model training: the code that runs in the training image (GPU pod) and as the local process alike.

Entry point: ``python -m maestro_ml.training <task_assignment|task_duration> --train-uri ... --valid-uri ...``
(``maestro_ml.training.cli``). Nothing in this package imports Airflow.
"""
