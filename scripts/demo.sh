#!/usr/bin/env bash
# The main job, locally: a TaskRun doing its work during a (simulated) deploy.
# Creates the venv, builds the release handler, starts the AWS emulator and a local Lambda
# service in front of the real binary, plays the story of scripts/demo.py through the
# Lambda Invoke API, and stops everything, even on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1

bash scripts/venv.sh
echo "==> building the release handler (target/release/bootstrap)"
cargo build --release --bin bootstrap

export TASKRUN_EMULATOR_DIR=.tmp/demo
mkdir -p "$TASKRUN_EMULATOR_DIR"
lambda_pid=""
cleanup() {
  local status=$?
  trap - EXIT
  if [ -n "$lambda_pid" ]; then
    kill -TERM "$lambda_pid" 2>/dev/null || true
    wait "$lambda_pid" 2>/dev/null || true
  fi
  bash scripts/emulator.sh stop >/dev/null 2>&1 || true
  exit "$status"
}
trap cleanup EXIT

echo "==> starting the AWS emulator"
EMULATOR_URL=$(bash scripts/emulator.sh start | grep -o 'http://127\.0\.0\.1:[0-9]*' | tail -n 1)
echo "    $EMULATOR_URL"

echo "==> starting the local Lambda service in front of target/release/bootstrap"
port_file="$TASKRUN_EMULATOR_DIR/lambda.port"
rm -f "$port_file"
AWS_ENDPOINT_URL="$EMULATOR_URL" AWS_LAMBDA_LOG_LEVEL=warn \
  .venv/bin/python scripts/local_lambda.py --binary target/release/bootstrap --port 0 \
  --port-file "$port_file" --parent-pid $$ --function-name TaskRun \
  >"$TASKRUN_EMULATOR_DIR/lambda.log" 2>&1 &
lambda_pid=$!
for _ in $(seq 1 300); do
  [ -s "$port_file" ] && break
  kill -0 "$lambda_pid" 2>/dev/null || { cat "$TASKRUN_EMULATOR_DIR/lambda.log" >&2; exit 1; }
  sleep 0.1
done
[ -s "$port_file" ] || { echo "the local Lambda service did not start" >&2; exit 1; }
LAMBDA_URL="http://127.0.0.1:$(cat "$port_file")"
echo "    $LAMBDA_URL"

.venv/bin/python scripts/demo.py --lambda-url "$LAMBDA_URL" --emulator-url "$EMULATOR_URL"
