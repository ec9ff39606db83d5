"""The host name Airflow records on a task instance (``[core] hostname_callable``).

Airflow's default is the machine's FQDN. Several Celery workers on one machine (the distributed
e2e test, a laptop running the compose stack's workers side by side) would then all record the
same name, and nobody could tell from the API which worker ran a task. A worker started with
``MAESTRO_WORKER_NAME`` records that name instead; without it this is Airflow's default.

Set ``AIRFLOW__CORE__HOSTNAME_CALLABLE=maestro_ml.platform.hostname.worker_hostname`` to use it.
"""

from __future__ import annotations

import os
import socket

WORKER_NAME_ENV = "MAESTRO_WORKER_NAME"


def worker_hostname() -> str:
    """``MAESTRO_WORKER_NAME`` when set, else the FQDN (Airflow's own default)."""
    return os.environ.get(WORKER_NAME_ENV, "").strip() or socket.getfqdn()
