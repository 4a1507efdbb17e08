#!/usr/bin/env bash
# Offline CloudFormation contract tests (`cfn test`) of a resource type of this repository.
#
#   bash scripts/cfn-test.sh [--project DIR] [extra cfn test arguments, e.g. -- -k contract_create_read]
#
# --project: the type's project directory (its .rpdk-config, schema and inputs/): `.` for
# Org::ECS::TaskRun (the default), `service-restart` for Org::ECS::ServiceRestart.
# 1. ensures .venv (scripts/venv.sh: cloudformation-cli, the rust plugin, moto, ...)
# 2. the handler binary: $TASKRUN_BINARY, or target/debug/<the binary .rpdk-config names>
#    (built if missing)
# 3. starts its own local AWS emulator (scripts/emulator.sh with TASKRUN_EMULATOR_DIR=
#    .tmp/cfn-test/emulator: an emulator you started by hand in .tmp/ is never used or
#    touched) and seeds it with what the inputs/ of both types refer to
#    (cfn/seed_emulator.py: clusters, task definitions, a service)
# 4. starts scripts/local_lambda.py: the Lambda Invoke API in front of the real binary,
#    whose AWS calls go to the emulator (AWS_ENDPOINT_URL)
# 5. runs `cfn test` against it through cfn/cfn_test_offline.py, which answers only
#    STS GetCallerIdentity and the credential lookup locally
# Every server is stopped on exit, failure included. Exits with cfn test's status.
set -euo pipefail
cd "$(dirname "$0")/.."

PROJECT=.
if [ "${1:-}" = "--project" ]; then
  PROJECT=${2:?--project needs a directory}
  shift 2
fi
if [ ! -f "$PROJECT/.rpdk-config" ]; then
  echo "cfn-test: $PROJECT has no .rpdk-config" >&2
  exit 2
fi
# The handler binary the project's .rpdk-config names (settings.binary; default bootstrap).
BINARY_NAME=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("settings", {}).get("binary", "bootstrap"))' "$PROJECT/.rpdk-config")

export AWS_EC2_METADATA_DISABLED=true
REGION=us-east-1
FUNCTION=TaskRun
WORK=.tmp/cfn-test
mkdir -p "$WORK"
# This script's own emulator; it exits by itself should this script be killed.
export TASKRUN_EMULATOR_DIR=$WORK/emulator
export TASKRUN_EMULATOR_PARENT_PID=$$
# One run at a time per checkout: the emulator directory and the port files are per checkout.
exec 9>"$WORK/lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  echo "cfn-test: another scripts/cfn-test.sh is running in this checkout; waiting for it" >&2
  flock 9
fi

lambda_pid=""
cfn_pid=""
emulator_started=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$cfn_pid" ] && kill -0 "$cfn_pid" 2>/dev/null; then
    kill -TERM "$cfn_pid" 2>/dev/null || true
    wait "$cfn_pid" 2>/dev/null || true
  fi
  if [ -n "$lambda_pid" ] && kill -0 "$lambda_pid" 2>/dev/null; then
    kill -TERM "$lambda_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$lambda_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$lambda_pid" 2>/dev/null || true
  fi
  if [ -n "$emulator_started" ]; then
    bash scripts/emulator.sh stop >/dev/null 2>&1 || true
  fi
  if [ "$status" = 130 ] || [ "$status" = 143 ]; then
    echo "cfn-test: interrupted; the emulator and the handler are stopped" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bash scripts/venv.sh
PY=.venv/bin/python

BINARY="${TASKRUN_BINARY:-target/debug/$BINARY_NAME}"
if [ ! -x "$BINARY" ]; then
  if [ -n "${TASKRUN_BINARY:-}" ]; then
    echo "cfn-test: TASKRUN_BINARY=$BINARY is not an executable file" >&2
    exit 2
  fi
  echo "cfn-test: building $BINARY" >&2
  (cd "$PROJECT" && cargo build --bin "$BINARY_NAME")
fi
BINARY=$(cd "$(dirname "$BINARY")" && pwd)/$(basename "$BINARY")

# --- emulator ---------------------------------------------------------------
# A leftover in this script's own directory (a run that was killed) is stopped, not reused.
bash scripts/emulator.sh stop >/dev/null 2>&1 || true
emulator_started=1
emulator_out=$(bash scripts/emulator.sh start 9>&-)
EMULATOR_URL=$(printf '%s\n' "$emulator_out" | grep -o 'http://127\.0\.0\.1:[0-9]*' | tail -n 1 || true)
if [ -z "$EMULATOR_URL" ]; then
  echo "cfn-test: scripts/emulator.sh start printed no URL:" >&2
  printf '%s\n' "$emulator_out" >&2
  exit 1
fi
echo "cfn-test: emulator at $EMULATOR_URL (log: $TASKRUN_EMULATOR_DIR/emulator.log)" >&2
AWS_REGION=$REGION "$PY" cfn/seed_emulator.py --endpoint "$EMULATOR_URL" --region "$REGION" >&2

# --- local Lambda -------------------------------------------------------------
port_file="$WORK/lambda.port"
lambda_log="$WORK/lambda.log"
rm -f "$port_file"
AWS_ENDPOINT_URL="$EMULATOR_URL" \
AWS_REGION=$REGION AWS_DEFAULT_REGION=$REGION \
AWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE \
AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY \
RUST_LOG="${RUST_LOG:-info}" \
  "$PY" scripts/local_lambda.py --binary "$BINARY" --port 0 --port-file "$port_file" \
    --parent-pid $$ --function-name "$FUNCTION" >"$WORK/lambda.out" 2>"$lambda_log" 9>&- &
lambda_pid=$!
for _ in $(seq 1 600); do
  [ -s "$port_file" ] && break
  if ! kill -0 "$lambda_pid" 2>/dev/null; then
    echo "cfn-test: local_lambda.py exited; its log:" >&2
    tail -n 50 "$lambda_log" >&2 || true
    exit 1
  fi
  sleep 0.1
done
if [ ! -s "$port_file" ]; then
  echo "cfn-test: local_lambda.py did not get ready in 60 s" >&2
  exit 1
fi
LAMBDA_URL="http://127.0.0.1:$(cat "$port_file")"
echo "cfn-test: handler $BINARY behind $LAMBDA_URL (log: $lambda_log)" >&2

# --- cfn test -----------------------------------------------------------------
# Arguments before `--` go to cfn test, those after it to pytest. By default pytest
# lists every test's outcome at the end (-rfEsp) and writes no .pytest_cache.
cfn_args=()
pytest_args=(-rfEsp -p no:cacheprovider)
after_dashes=0
for arg in "$@"; do
  if [ "$after_dashes" = 0 ] && [ "$arg" = "--" ]; then after_dashes=1; continue; fi
  if [ "$after_dashes" = 1 ]; then pytest_args+=("$arg"); else cfn_args+=("$arg"); fi
done
# In the background and waited for: on Ctrl-C this script stops it and cleans up at once
# (cfn test itself would go on with the next input set after an interrupted one).
set +e
(cd "$PROJECT" && exec "$OLDPWD/$PY" "$OLDPWD/cfn/cfn_test_offline.py" test \
  --endpoint "$LAMBDA_URL" --function-name "$FUNCTION" --region "$REGION" \
  "${cfn_args[@]}" -- "${pytest_args[@]}") 9>&- &
cfn_pid=$!
wait "$cfn_pid"
status=$?
cfn_pid=""
set -e
if [ "$status" -ne 0 ]; then
  echo "cfn-test: cfn test failed ($status); last lines of the handler log ($lambda_log):" >&2
  tail -n 40 "$lambda_log" >&2 || true
fi
exit "$status"
