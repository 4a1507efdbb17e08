#!/usr/bin/env bash
# Fuzzes the whole path from raw event bytes to the progress event
# (fuzz/fuzz_targets/dispatch.rs: cfn_protocol::dispatch over TaskRun, ECS and the
# record store in memory). A crash is a panic or an answer that is not a valid progress
# event; libFuzzer keeps it under fuzz/artifacts/dispatch/.
#
#   bash scripts/fuzz.sh [--seconds N] [--jobs N]      (default: 30 s, 1 job)
#
# Installs what it needs: Rust nightly (rustup) and cargo-fuzz (into .tmp/tools).
# Prints one line: executions, crashes, corpus size. Exits non-zero on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
seconds=30
jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "usage: $0 [--seconds N] [--jobs N]" >&2; exit 2 ;;
  esac
done

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
  echo "fuzz: installing the Rust nightly toolchain (cargo fuzz needs it)" >&2
  rustup toolchain install nightly --profile minimal >&2
fi
tools=$root/.tmp/tools
if [ ! -x "$tools/bin/cargo-fuzz" ]; then
  echo "fuzz: installing cargo-fuzz 0.13.1 into .tmp/tools (once, about 2 minutes)" >&2
  cargo install --quiet --root "$tools" cargo-fuzz --version 0.13.1 --locked >&2
fi

corpus=$root/.tmp/fuzz-corpus/dispatch
mkdir -p "$corpus" "$root/.tmp/test-logs"
cp -n fuzz/seeds/* "$corpus"/ 2>/dev/null || true
log=$root/.tmp/test-logs/fuzz.log
artifacts=$root/fuzz/artifacts/dispatch
count() { if [ -d "$1" ]; then find "$1" -maxdepth 1 -type f | wc -l; else echo 0; fi; }
before=$(count "$artifacts")

# No sanitizer: the code under test is safe Rust; what is hunted is panics and invalid
# answers, and executions are 2-3 times faster without ASan.
echo "fuzz: building the target with nightly (the first time: a few minutes), then running for $seconds s" >&2
set +e
PATH="$tools/bin:$PATH" cargo +nightly fuzz run --sanitizer none dispatch "$corpus" -- \
  -dict="$root/fuzz/dispatch.dict" -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
  -print_final_stats=1 -max_len=65536 >"$log" 2>&1
status=$?
set -e
after=$(count "$artifacts")
crashes=$((after - before))
executions=$(grep -h "stat::number_of_executed_units" "$log" fuzz-*.log 2>/dev/null | awk '{s += $2} END {print s + 0}')
rm -f fuzz-*.log
inputs=$(count "$corpus")
echo "fuzz: $executions executions in ${seconds} s x $jobs job(s), $crashes crashes (a crash: a panic or an answer that is not a valid progress event); corpus $inputs inputs; log $log"
if [ "$status" -ne 0 ] || [ "$crashes" -gt 0 ]; then
  echo "fuzz: FAILED (status $status); see $log and $artifacts" >&2
  tail -n 30 "$log" >&2
  exit 1
fi
