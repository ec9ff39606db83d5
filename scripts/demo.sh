#!/usr/bin/env bash
# `make demo`: the whole pipeline once, headless, end to end, through real Airflow, on a fresh MAESTRO_HOME.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
export MAESTRO_HOME="${MAESTRO_DEMO_HOME:-$PWD/.maestro/demo}"
rm -rf "$MAESTRO_HOME"
mkdir -p "$MAESTRO_HOME"
if [ "${MAESTRO_DEMO_PRESET:-demo}" = tracker ]; then
  # 150 days of tracker history, all in the past: imported as an export, not landed live.
  export MAESTRO_START_DATE="${MAESTRO_START_DATE:-2026-06-01T00:00:00Z}"
else
  export MAESTRO_START_DATE="${MAESTRO_START_DATE:-2026-11-01T00:00:00Z}"
fi
# Headless: embedded stores only, nothing listening on a port.
export MLFLOW_TRACKING_URI="sqlite:///$MAESTRO_HOME/mlflow/mlflow.db"
export AIRFLOW_HOME="$MAESTRO_HOME/airflow"
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="sqlite:///$AIRFLOW_HOME/airflow.db"
# shellcheck source=scripts/env.sh
. scripts/env.sh
mkdir -p "$MAESTRO_HOME/mlflow" "$MAESTRO_HOME/logs"
echo "make demo: state in $MAESTRO_HOME, logs in $MAESTRO_HOME/logs/demo.log"
airflow db migrate >"$MAESTRO_HOME/logs/demo.log" 2>&1
exec python scripts/demo.py "$@"
