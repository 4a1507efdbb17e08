#!/usr/bin/env bash
# Starts/stops the local AWS emulator (emulator/taskrun_emulator.py: moto + our ECS task lifecycle).
#   scripts/emulator.sh start   start it in the background on a free 127.0.0.1 port, print its URL
#   scripts/emulator.sh stop    stop it (by the PID in .tmp/emulator.pid) and remove its files
#   scripts/emulator.sh url     print the URL of the running emulator (exit 1 if none)
# Files: .tmp/emulator.pid, .tmp/emulator.port, .tmp/emulator.log (the log is kept after stop).
# TASKRUN_EMULATOR_DIR=DIR puts those files in DIR instead, for a second, independent emulator
# (make demo uses .tmp/demo, the contract tests .tmp/cfn-test/emulator: they never touch yours).
# TASKRUN_EMULATOR_PARENT_PID=PID makes the emulator exit by itself once PID is gone (scripts
# use it with their own PID, so that nothing outlives them even if they are killed).
# Needs .venv (scripts/venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

TMP=${TASKRUN_EMULATOR_DIR:-.tmp}
PID_FILE=$TMP/emulator.pid
PORT_FILE=$TMP/emulator.port
LOG_FILE=$TMP/emulator.log
PY=.venv/bin/python

running_pid() {
  # Prints the PID if the PID file names a live emulator process.
  local pid
  pid=$(cat "$PID_FILE" 2>/dev/null || true)
  [ -n "$pid" ] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  grep -q taskrun_emulator "/proc/$pid/cmdline" 2>/dev/null || return 1
  echo "$pid"
}

url() {
  local port
  running_pid >/dev/null || return 1
  port=$(cat "$PORT_FILE" 2>/dev/null || true)
  [ -n "$port" ] || return 1
  echo "http://127.0.0.1:$port"
}

start() {
  if url 2>/dev/null; then
    return 0
  fi
  if [ ! -x "$PY" ]; then
    echo "emulator.sh: $PY not found; run scripts/venv.sh first" >&2
    exit 1
  fi
  mkdir -p "$TMP"
  rm -f "$PORT_FILE" "$PID_FILE"
  local extra=()
  if [ -n "${TASKRUN_EMULATOR_PARENT_PID:-}" ]; then
    extra=(--parent-pid "$TASKRUN_EMULATOR_PARENT_PID")
  fi
  nohup "$PY" emulator/taskrun_emulator.py --port 0 --port-file "$PORT_FILE" --log-requests \
    "${extra[@]}" >"$LOG_FILE" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$PID_FILE"
  local deadline=$((SECONDS + 60))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if [ -s "$PORT_FILE" ] && grep -q '^READY ' "$LOG_FILE" 2>/dev/null; then
      echo "http://127.0.0.1:$(cat "$PORT_FILE")"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "emulator.sh: emulator exited during start; log follows" >&2
      tail -n 50 "$LOG_FILE" >&2 || true
      rm -f "$PID_FILE" "$PORT_FILE"
      exit 1
    fi
    sleep 0.1
  done
  echo "emulator.sh: emulator not ready after 60 s; stopping it (log: $LOG_FILE)" >&2
  kill "$pid" 2>/dev/null || true
  rm -f "$PID_FILE" "$PORT_FILE"
  exit 1
}

stop() {
  local pid
  if pid=$(running_pid); then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -9 "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url)
    if ! url; then
      echo "emulator.sh: emulator is not running" >&2
      exit 1
    fi
    ;;
  *)
    echo "usage: $0 start|stop|url" >&2
    exit 2
    ;;
esac
