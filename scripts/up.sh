#!/usr/bin/env bash
# `make up`: initialise the local platform and run it in the foreground until Ctrl-C.
# Airflow 3 (api-server, scheduler, dag-processor, triggerer; LocalExecutor on an embedded PostgreSQL
# unless AIRFLOW__DATABASE__SQL_ALCHEMY_CONN says otherwise), an MLflow server on SQLite, the training
# pool, the Feast repo applied and demo data in the landing zone. Re-running reuses everything that exists.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="$PWD/.venv/bin"
export PATH="$BIN:$PATH"

# The platform's first hour is pinned once per MAESTRO_HOME: MAESTRO_SEED_DAYS (14) days before the
# first `make up`, so the demo data and the hourly schedule cover the same window.
export MAESTRO_HOME="${MAESTRO_HOME:-$PWD/.maestro}"
mkdir -p "$MAESTRO_HOME"
if [[ ! -s "$MAESTRO_HOME/platform.env" ]]; then
  days="${MAESTRO_SEED_DAYS:-14}"
  printf 'MAESTRO_START_DATE=%s\nMAESTRO_SEED_DAYS=%s\n' \
    "$(date -u -d "$(date -u +%Y-%m-%dT%H:00:00Z) - $days days" +%Y-%m-%dT%H:00:00Z)" "$days" >"$MAESTRO_HOME/platform.env"
fi
set -a
# shellcheck disable=SC1091
. "$MAESTRO_HOME/platform.env"
set +a
LOGS="$MAESTRO_HOME/logs"
mkdir -p "$LOGS" "$MAESTRO_HOME/mlflow/artifacts"
# The Airflow metadata DB: an embedded PostgreSQL (binaries from the pgserver wheel, a Unix socket
# in MAESTRO_HOME) unless one is configured. SQLite deadlocks under a burst of API writes
# (maestro_ml/platform/metadata_db.py says how).
PGDATA_DIR=""
if [[ -z "${AIRFLOW__DATABASE__SQL_ALCHEMY_CONN:-}" ]]; then
  PGDATA_DIR="$MAESTRO_HOME/pgdata"
  AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$(PYTHONPATH="$PWD/plugins" python -m maestro_ml.platform.metadata_db start \
    "$PGDATA_DIR" 2>>"$LOGS/init.log") || { tail -n 30 "$LOGS/init.log"; exit 1; }
  export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
fi
# shellcheck source=scripts/env.sh
. scripts/env.sh

pids=()
names=()
# Seconds running tasks get to finish once the scheduler stops taking new ones, then to report a kill.
TASK_GRACE="${MAESTRO_STOP_TASK_GRACE:-60}"
KILL_GRACE=20

pid_of() { # the process group of a started service, by name
  local i
  for i in "${!names[@]}"; do [[ "${names[$i]}" == "$1" ]] && echo "${pids[$i]}"; done
}
wait_gone() { # seconds, pids...: wait until none of the groups is alive
  local seconds=$1 pid alive
  shift
  for _ in $(seq "$seconds"); do
    alive=0
    for pid in "$@"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
    ((alive)) || return 0
    sleep 1
  done
  return 1
}

stop() {
  trap - INT TERM EXIT
  # The terminal (or a pipe such as `| tee`) may be gone already: never die before the services do.
  trap '' PIPE
  set +e
  echo
  echo "Stopping the platform..."
  local scheduler others pid
  scheduler=$(pid_of airflow-scheduler)
  others=("$(pid_of airflow-dag-processor)" "$(pid_of airflow-triggerer)")
  # 1. No new work: the scheduler (only its own process, not its group) stops scheduling, and its
  #    LocalExecutor waits for the running tasks; they report to the api-server, which is still up.
  if [[ -n "$scheduler" ]]; then
    kill -TERM "$scheduler" 2>/dev/null
    for pid in "${others[@]}"; do [[ -n "$pid" ]] && kill -TERM -- "-$pid" 2>/dev/null; done
    if ! wait_gone "$TASK_GRACE" "$scheduler"; then
      # 2. Tasks still running (a long training): SIGTERM them; each marks itself failed or
      #    up for retry through the api-server, so no task is left `running`.
      echo "  tasks still running after ${TASK_GRACE}s: stopping them"
      kill -TERM -- "-$scheduler" 2>/dev/null
      wait_gone "$KILL_GRACE" "$scheduler"
    fi
  fi
  # 3. The api-server and MLflow last, once nothing reports to them any more.
  for pid in "${pids[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
  wait_gone "$KILL_GRACE" "${pids[@]}"
  for pid in "${pids[@]}"; do kill -KILL -- "-$pid" 2>/dev/null || true; done
  # 4. The metadata DB once nothing writes to it.
  [[ -n "$PGDATA_DIR" ]] && python -m maestro_ml.platform.metadata_db stop "$PGDATA_DIR" 2>>"$LOGS/init.log"
  echo "Stopped."
  exit 0
}
trap stop INT TERM EXIT

start() { # name, command...
  local name=$1
  shift
  setsid "$@" >>"$LOGS/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  echo "  started $name (pid $!, log $LOGS/$name.log)"
}

echo "Initialising in $MAESTRO_HOME ..."
airflow db migrate >>"$LOGS/init.log" 2>&1
[[ -s "$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE" ]] ||
  (umask 077 && echo '{"admin": "admin"}' >"$AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE")
python -m maestro_ml.platform.bootstrap init >>"$LOGS/init.log" 2>&1 || { tail -n 30 "$LOGS/init.log"; exit 1; }

echo "Starting services ..."
# MLflow's job runner (GenAI scorers; five huey consumer processes, about 1.3 GB) serves nothing here.
MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false start mlflow mlflow server --backend-store-uri "sqlite:///$MAESTRO_HOME/mlflow/mlflow.db" \
  --artifacts-destination "$MAESTRO_HOME/mlflow/artifacts" --host 127.0.0.1 --port "$MLFLOW_PORT" --workers 1
start airflow-api-server airflow api-server --port "$AIRFLOW__API__PORT"
# Task processes report to the api-server's execution API: a scheduler that starts first launches
# tasks that fail before they run (retries hide it, but the first try is lost).
for _ in $(seq 120); do
  curl -fsS "http://localhost:$AIRFLOW__API__PORT/api/v2/monitor/health" >/dev/null 2>&1 && break
  sleep 1
done
start airflow-scheduler airflow scheduler
start airflow-dag-processor airflow dag-processor
start airflow-triggerer airflow triggerer
cat <<MSG

Maestro ML is running (Ctrl-C stops everything):
  Airflow UI and REST API  http://localhost:$AIRFLOW__API__PORT   login: admin / admin
  MLflow                   http://localhost:$MLFLOW_PORT/#/experiments?workflowType=machine_learning
  State and logs           $MAESTRO_HOME
Every DAG is unpaused; ingest_events is catching up on the demo data from $MAESTRO_START_DATE.

The README's REST examples with dates in your data (also in $MAESTRO_HOME/examples.sh):
MSG
python -m maestro_ml.platform.examples >"$MAESTRO_HOME/examples.sh" && sed 's/^/  /' "$MAESTRO_HOME/examples.sh"
wait -n "${pids[@]}" || true
echo "A service exited on its own; see $LOGS." >&2
exit 1
