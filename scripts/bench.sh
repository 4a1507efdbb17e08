#!/usr/bin/env bash
# Benchmark of the Org::ECS::TaskRun handler: the real binary that ships behind a local
# Lambda Runtime API (scripts/bench.py), against its own AWS emulator. Prints one table
# (each figure with its goal) and a summary line; also writes it to .tmp/bench/<label>.txt.
# `make bench` runs it; scripts/bench.md says how each figure is measured.
#
#   bash scripts/bench.sh [--binary PATH] [--label NAME] [--quick] [-- bench.py options]
#
# Without --binary: builds the handler as `cfn submit` packages it (profile dist, x86_64,
# glibc 2.34, with cargo-lambda), label `after`, benchmarks that binary and zips it for
# figure 7. With --binary (e.g. the first wave's, .tmp/wave1-bootstrap --label before)
# nothing is built and the zip is n/a.
# --quick: no 60 s tasks (figure 4 uses 40 s tasks, figure 5 skips 60 s).
# About 2.5 minutes, 1.5 with --quick (plus the build: ~8 min on 2 cores the first time).
set -euo pipefail
cd "$(dirname "$0")/.."

binary=""
label=""
quick=""
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --label) label=${2:?--label needs a name}; shift 2 ;;
    --label=*) label=${1#--label=}; shift ;;
    --quick) quick=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$label" in
  */*|.*) echo "bench: --label must be a plain name" >&2; exit 2 ;;
esac

DIR=.tmp/bench
mkdir -p "$DIR"
bash scripts/venv.sh

zip_args=()
if [ -z "$binary" ]; then
  label=${label:-after}
  # The binary that ships: profile dist, x86_64, glibc 2.34, as `cfn submit` builds it
  # (cargo-lambda; incremental, so seconds when nothing changed).
  echo "==> dist build (cargo-lambda, x86_64, glibc 2.34; the first one takes several minutes)" >&2
  if ! PATH="$PWD/.venv/bin:$PATH" .venv/bin/cargo-lambda lambda build --profile dist \
      --target x86_64-unknown-linux-gnu.2.34 --bin bootstrap --output-format binary \
      --lambda-dir target/lambda/x86_64 >"$DIR/dist-build.log" 2>&1; then
    echo "bench: the dist build failed; its log ($DIR/dist-build.log) ends:" >&2
    tail -n 20 "$DIR/dist-build.log" >&2
    exit 1
  fi
  binary=target/lambda/x86_64/bootstrap/bootstrap
  zip_args=(--zip-binary "$binary")
else
  label=${label:-$(basename "$binary")}
  [ -x "$binary" ] || { echo "bench: --binary $binary is not an executable file" >&2; exit 2; }
fi

emu_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

ready="$DIR/$label-emulator.out"
: >"$ready"
.venv/bin/python emulator/taskrun_emulator.py --port 0 --parent-pid $$ \
  >"$ready" 2>"$DIR/$label-emulator.log" &
emu_pid=$!
url=""
for _ in $(seq 1 600); do
  url=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$ready" 2>/dev/null | head -n 1 || true)
  [ -n "$url" ] && break
  kill -0 "$emu_pid" 2>/dev/null || { echo "bench: the emulator exited (log: $DIR/$label-emulator.log)" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "bench: the emulator did not start in 60 s" >&2; exit 1; }
echo "==> emulator $url (pid $emu_pid); benchmarking $binary as '$label'" >&2

.venv/bin/python scripts/bench.py --binary "$binary" --label "$label" --emulator-url "$url" \
  ${quick:+--quick} ${zip_args[@]+"${zip_args[@]}"} ${extra[@]+"${extra[@]}"}
