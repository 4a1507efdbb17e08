#!/usr/bin/env bash
# The main job, locally: TaskRuns and a ServiceRestart doing their work during a (simulated)
# deploy. Creates the venv, builds both handlers (the debug builds `make test` uses too),
# starts the AWS emulator and one local Lambda service in front of each real binary, plays
# the story of scripts/demo.py through the Lambda Invoke API, and stops everything, even on
# failure or Ctrl-C. Its files are in .tmp/demo/ (a hand-started emulator in .tmp/ is not
# touched).
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1

DIR=.tmp/demo
BINARY=target/debug/bootstrap
RESTART_BINARY=target/debug/servicerestart-bootstrap
LAMBDA_LOG=$DIR/lambda.log
RESTART_LOG=$DIR/servicerestart-lambda.log
EMULATOR_LOG=$DIR/emulator.log

if ! command -v cargo >/dev/null 2>&1; then
  echo "make demo: cargo is not on PATH: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
mkdir -p "$DIR"
exec 8>"$DIR/lock"
if command -v flock >/dev/null 2>&1 && ! flock -n 8; then
  echo "make demo: another make demo is running in this checkout; wait for it to finish" >&2
  exit 1
fi

lambda_pids=""
venv_pid=""
started=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$venv_pid" ] && kill -0 "$venv_pid" 2>/dev/null; then
    # its own process group (setsid): pip and whatever it runs go too
    kill -TERM -- "-$venv_pid" 2>/dev/null || kill -TERM "$venv_pid" 2>/dev/null || true
    wait "$venv_pid" 2>/dev/null || true
  fi
  for lambda_pid in $lambda_pids; do
    kill -0 "$lambda_pid" 2>/dev/null || continue
    kill -TERM "$lambda_pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$lambda_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$lambda_pid" 2>/dev/null || true
    wait "$lambda_pid" 2>/dev/null || true
  done
  if [ -n "$started" ]; then
    bash scripts/emulator.sh stop >/dev/null 2>&1 || true
    rm -f "$DIR"/*.port
    echo
    if [ "$status" = 130 ] || [ "$status" = 143 ]; then
      echo "make demo: interrupted; the emulator and the handler are stopped."
    elif [ "$status" != 0 ]; then
      echo "make demo: FAILED (exit $status); the emulator and the handler are stopped." >&2
    else
      echo "Everything is stopped. The logs of this run:"
    fi
    echo "  TaskRun handler (info level):         $LAMBDA_LOG"
    echo "  ServiceRestart handler (info level):  $RESTART_LOG"
    echo "  emulator (AWS calls):                 $EMULATOR_LOG"
  elif [ "$status" = 130 ] || [ "$status" = 143 ]; then
    echo
    echo "make demo: interrupted (nothing was running yet)."
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The virtualenv installs (network, about a minute) while cargo builds (CPU).
set +e
bash scripts/venv.sh --check
venv_state=$?
set -e
case "$venv_state" in
  0) ;;
  10)
    echo "==> setting up .venv in the background (pinned Python tools, first time about 1-2 minutes; log: .tmp/venv-install.log)"
    if command -v setsid >/dev/null 2>&1; then
      setsid bash scripts/venv.sh >"$DIR/venv.out" 2>&1 </dev/null 8>&- &
      venv_pid=$!
    else
      bash scripts/venv.sh
    fi
    ;;
  *) exit 1 ;;
esac

BUILD=(cargo build -p taskrun --bin bootstrap -p service-restart --bin servicerestart-bootstrap)
if [ -x "$BINARY" ] && [ -x "$RESTART_BINARY" ]; then
  echo "==> building the handlers ($BINARY, $RESTART_BINARY; up to date in seconds unless the sources changed)"
else
  echo "==> building the handlers ($BINARY, $RESTART_BINARY; first time: about 3-5 minutes on 2 cores, later: seconds)"
  echo "    ${BUILD[*]}: the AWS SDK and both handlers, the same builds \`make test\` uses"
fi
build_started=$SECONDS
if ! "${BUILD[@]}"; then
  echo "make demo: ${BUILD[*]} failed (its errors are above)" >&2
  exit 1
fi
echo "    built in $(( SECONDS - build_started )) s"

if [ -n "$venv_pid" ]; then
  if kill -0 "$venv_pid" 2>/dev/null; then
    echo "==> waiting for .venv (log: .tmp/venv-install.log)"
  fi
  set +e
  wait "$venv_pid"
  venv_status=$?
  set -e
  venv_pid=""
  if [ "$venv_status" != 0 ]; then
    cat "$DIR/venv.out" >&2
    exit 1
  fi
  grep -h '\.venv ready' "$DIR/venv.out" || true
fi

export TASKRUN_EMULATOR_DIR=$DIR
# The emulator and the local Lambda service exit by themselves if this script is killed.
export TASKRUN_EMULATOR_PARENT_PID=$$
echo "==> starting the AWS emulator"
# A leftover of a killed demo (this directory is the demo's own) would be reused: stop it.
bash scripts/emulator.sh stop >/dev/null 2>&1 || true
started=1
if ! emulator_out=$(bash scripts/emulator.sh start 8>&-); then
  exit 1
fi
EMULATOR_URL=$(printf '%s\n' "$emulator_out" | grep -o 'http://127\.0\.0\.1:[0-9]*' | tail -n 1 || true)
[ -n "$EMULATOR_URL" ] || { echo "make demo: the emulator printed no URL: $emulator_out" >&2; exit 1; }
echo "    $EMULATOR_URL"

# start_lambda NAME BINARY LOG: one local Lambda service (Invoke + Runtime API) in front of
# BINARY; prints its URL.
start_lambda() {
  local name=$1 binary=$2 log=$3 port_file="$DIR/$1.port" pid
  rm -f "$port_file"
  AWS_ENDPOINT_URL="$EMULATOR_URL" AWS_LAMBDA_LOG_LEVEL=info \
    .venv/bin/python scripts/local_lambda.py --binary "$binary" --port 0 \
    --port-file "$port_file" --parent-pid $$ --function-name "$name" \
    >"$log" 2>&1 8>&- &
  pid=$!
  lambda_pids="$lambda_pids $pid"
  for _ in $(seq 1 600); do
    [ -s "$port_file" ] && break
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "make demo: the local Lambda service of $name exited; last lines of $log:" >&2
      tail -n 20 "$log" >&2
      exit 1
    fi
    sleep 0.1
  done
  [ -s "$port_file" ] || { echo "make demo: the local Lambda service of $name did not start in 60 s (log: $log)" >&2; exit 1; }
  echo "http://127.0.0.1:$(cat "$port_file")"
}
echo "==> starting a local Lambda service in front of each handler"
# Not in $(...): the pids must stay in this shell for the cleanup.
start_lambda TaskRun "$BINARY" "$LAMBDA_LOG" >"$DIR/taskrun.url"
start_lambda ServiceRestart "$RESTART_BINARY" "$RESTART_LOG" >"$DIR/servicerestart.url"
TASKRUN_URL=$(cat "$DIR/taskrun.url")
RESTART_URL=$(cat "$DIR/servicerestart.url")
echo "    Org::ECS::TaskRun         $TASKRUN_URL ($BINARY)"
echo "    Org::ECS::ServiceRestart  $RESTART_URL ($RESTART_BINARY)"
echo

.venv/bin/python scripts/demo.py --taskrun-url "$TASKRUN_URL" --servicerestart-url "$RESTART_URL" \
  --emulator-url "$EMULATOR_URL" 8>&-
