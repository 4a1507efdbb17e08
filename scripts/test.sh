#!/usr/bin/env bash
# Every test of the project, from a fresh clone: style and lint gates, the Rust unit, mock
# and end-to-end tests (against the emulator) of both resource types, their property
# tests, the emulator's and the rpdk-rust plugin's own tests, each type's schema and
# generated-docs check and offline CloudFormation contract tests, the example templates'
# lint, and the fuzzer when scripts/fuzz.sh exists.
#
# Quiet by default: a line when a step starts, a progress line every 30 s while it runs
# (elapsed time and what it is doing: the crate being compiled, the test binary running,
# the scenarios played so far), and one line when it ends (PASS/FAIL, time, a short figure);
# each step's full output is in .tmp/test-logs/<step>.log, and a failing step shows the
# end of its log.
# A failing step does not stop the later ones (except the venv, which all need); the exit
# status is 1 if any step failed.
#   VERBOSE=1 make test     streams every step's output as well (still logged)
set -uo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
# A test run builds each crate once: incremental caches (2 GB of target/) are never reused.
export CARGO_INCREMENTAL=${CARGO_INCREMENTAL:-0}

LOGS=.tmp/test-logs
case "${VERBOSE:-0}" in ""|0|no|false) VERBOSE=0 ;; *) VERBOSE=1 ;; esac
# Streaming through tee to a terminal: keep cargo's colours there (the logs get them too).
if [ "$VERBOSE" = 1 ] && [ -t 1 ]; then export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-always}; fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "make test: cargo is not on PATH: install the Rust toolchain (rustup) first" >&2
  exit 1
fi
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log
: >"$LOGS/.started"

names=() results=() times=() figures=()
failed=0
total_started=$(date +%s.%N)

trap 'echo; echo "make test: interrupted (logs so far: $LOGS/)"; exit 130' INT
trap 'exit 143' TERM

fmt_time() {  # seconds (float) -> 4.2s | 3m07s
  awk -v s="$1" 'BEGIN { if (s < 60) printf "%.1fs", s; else printf "%dm%02ds", int(s / 60), int(s) % 60 }'
}

# --- figures: one short line out of a step's log ----------------------------------------
last_line() { grep -v '^[[:space:]]*$' "$1" | tail -n 1 | cut -c1-110; }

fig_venv() {
  if grep -q '\.venv ready' "$1"; then grep '\.venv ready' "$1" | sed 's/^ *\.venv ready (\(.*\))/installed (\1)/'
  elif [ "$2" = PASS ]; then echo "up to date"
  else last_line "$1"; fi
}
fig_fmt() {
  if [ "$2" = PASS ]; then echo "formatted"
  else echo "$(grep -c '^Diff in' "$1") places need \`cargo fmt --all\`"; fi
}
fig_clippy() {
  if [ "$2" = PASS ]; then echo "no warnings"
  else
    local n; n=$(grep -cE '^(error|warning)(\[|:)' "$1")
    echo "$n diagnostics (first: $(grep -m1 -E '^(error|warning)(\[|:)' "$1" | cut -c1-80))"
  fi
}
fig_cargo_test() {  # sums the "test result:" lines of every test binary
  local sums failing
  sums=$(awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($(i) ~ /^passed/) p += $(i-1); if ($(i) ~ /^failed/) f += $(i-1); if ($(i) ~ /^ignored/) g += $(i-1) } b++ }
              END { printf "%d %d %d %d", p, f, g, b }' "$1")
  read -r p f g b <<<"$sums"
  if [ "$2" = PASS ]; then
    echo "$p tests passed ($g ignored) in $b test binaries"
  elif [ "$b" = 0 ]; then
    grep -m1 -E '^error' "$1" | cut -c1-100 || last_line "$1"
  else
    failing=$(grep -E '^test .* \.\.\. FAILED$' "$1" | sed 's/^test \(.*\) \.\.\. FAILED$/\1/' | sort -u | head -n 3 | paste -sd, - | sed 's/,/, /g')
    echo "$f failed, $p passed${failing:+: $failing}"
  fi
}
fig_invariants() {
  local line; line=$(grep -E 'scenarios played' "$1" | tail -n 1 | sed 's/^[[:space:]]*//')
  if [ -n "$line" ]; then echo "$line"
  elif [ "$2" = PASS ]; then fig_cargo_test "$1" PASS
  else fig_cargo_test "$1" FAIL; fi
}
fig_pytest() {  # "61 passed in 3.2s" -> "61 passed"
  grep -E '[0-9]+ (passed|failed|error)' "$1" | tail -n 1 | sed -E 's/=//g; s/ in [0-9.]+s.*//; s/^[[:space:]]*//; s/[[:space:]]*$//'
}
fig_contract() {  # the summary line of each input set's pytest run
  local lines
  lines=$(grep -E '^=+ .*[0-9]+ (passed|failed|error).* =+$' "$1" | sed -E 's/=//g; s/ in [0-9.]+s.*//; s/, [0-9]+ deselected//; s/^[[:space:]]*//; s/[[:space:]]*$//' | awk '{ printf "%sset %d: %s", (NR > 1 ? "; " : ""), NR, $0 }')
  if [ -n "$lines" ]; then echo "$lines"; else last_line "$1"; fi
}
fig_fuzz() {  # fuzz.sh's one line, without its explanations
  local line; line=$(grep -E '^fuzz: .*executions' "$1" | tail -n 1)
  if [ -n "$line" ]; then echo "$line" | sed -E 's/^fuzz: //; s/ \([^)]*\)//; s/; log .*//'
  else last_line "$1"; fi
}
fig_last() { last_line "$1"; }

# --- disk: what this run wrote ------------------------------------------------------------
# Bytes of the files this run created or changed under the build outputs, the venv and the
# logs (hard links counted once; what an earlier run left and this one reused is not
# counted), against a budget: a CI disk ran out of space when the test binaries carried full
# debug info (18 GB in target/).
DISK_BUDGET_GIB=${DISK_BUDGET_GIB:-8}
disk_written() {
  local bytes gib
  bytes=$(find target fuzz/target .venv .tmp -type f -newer "$LOGS/.started" -printf '%i %s\n' 2>/dev/null \
    | sort -u | awk '{ s += $2 } END { printf "%.0f", s }')
  gib=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1073741824 }')
  for d in target fuzz/target .venv .tmp; do
    printf '%s: %s\n' "$d" "$(find "$d" -type f -newer "$LOGS/.started" -printf '%i %s\n' 2>/dev/null \
      | sort -u | awk '{ s += $2 } END { printf "%.2f GiB", s / 1073741824 }')"
  done
  if awk -v b="$bytes" -v g="$DISK_BUDGET_GIB" 'BEGIN { exit !(b > g * 1073741824) }'; then
    echo "disk: this run wrote $gib GiB (target/, fuzz/target/, .venv/, .tmp/): over the budget of $DISK_BUDGET_GIB GiB"
    return 1
  fi
  echo "disk: this run wrote $gib GiB (target/, fuzz/target/, .venv/, .tmp/); budget $DISK_BUDGET_GIB GiB"
}

# --- progress while a step runs ----------------------------------------------------------
# What a step's log says it is doing now: the last line that names an activity.
activity() {
  grep -aE '^ *(Compiling|Checking|Building|Running|Downloaded|Installing|Finished) |^test result:|scenarios played|scenarios so far|^fuzz: |^==> |passed|PASSED|^#[0-9]+ ' "$1" 2>/dev/null \
    | tail -n 1 | sed -E 's/^ +//; s/\x1b\[[0-9;]*m//g' | cut -c1-90
}
# Prints "<label>  <elapsed>  <activity>" every 30 s until the step's process ends.
heartbeat() {
  local label=$1 log=$2 began=$3 pid=$4 waited=0
  while kill -0 "$pid" 2>/dev/null; do
    sleep 1
    waited=$((waited + 1))
    if [ $((waited % 30)) -eq 0 ] && kill -0 "$pid" 2>/dev/null; then
      printf '  %-26s  ... %7s  %s\n' "$label" \
        "$(fmt_time "$(awk -v a="$began" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')")" \
        "$(activity "$log")"
    fi
  done
}

# --- running one step ---------------------------------------------------------------------
# step SLUG "LABEL" FIGURE-FUNCTION COMMAND...
step() {
  local slug=$1 label=$2 figure=$3; shift 3
  local log="$LOGS/$slug.log" started status result elapsed fig
  if [ "$VERBOSE" != 0 ]; then
    printf '\n==> %s  (%s)\n' "$label" "$*"
  else
    printf '  %-26s  started\n' "$label"
  fi
  started=$(date +%s.%N)
  if [ "$VERBOSE" != 0 ]; then
    "$@" </dev/null 2>&1 | tee "$log"
    status=${PIPESTATUS[0]}
  else
    "$@" </dev/null >"$log" 2>&1 &
    local pid=$!
    heartbeat "$label" "$log" "$started" "$pid" &
    local beat=$!
    wait "$pid"
    status=$?
    kill "$beat" 2>/dev/null
    wait "$beat" 2>/dev/null
  fi
  elapsed=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
  # An interrupted step: stop here rather than report it as a failure.
  if [ "$status" = 130 ]; then kill -INT $$; fi
  if [ "$status" = 0 ]; then result=PASS; else result=FAIL; failed=$((failed + 1)); fi
  fig=$("$figure" "$log" "$result" 2>/dev/null | head -n 1 | cut -c1-160)
  [ -n "$fig" ] || fig="exit status $status"
  printf '  %-26s %s %7s  %s\n' "$label" "$result" "$(fmt_time "$elapsed")" "$fig"
  if [ "$result" = FAIL ] && [ "$VERBOSE" = 0 ]; then
    echo "    --- last 40 lines of $log ---"
    grep -v 'Caught LookupError when pruning properties' "$log" | tail -n 40 | cut -c1-400 | sed 's/^/    /'
    echo "    --- full output: $log ---"
  fi
  names+=("$label") results+=("$result") times+=("$(fmt_time "$elapsed")") figures+=("$fig")
  return "$status"
}

skip() {  # skip "LABEL" "why"
  printf '  %-26s %s %7s  %s\n' "$1" SKIP "-" "$2"
  names+=("$1") results+=(SKIP) times+=("-") figures+=("$2")
}

echo "make test: every step's full output goes to $LOGS/<step>.log (VERBOSE=1 make test streams it)"
[ -e "$LOGS/.ran" ] || echo "  (the first run compiles the AWS SDK for clippy and for the tests: several minutes each)"

if ! step venv "venv (.venv, pinned)" fig_venv bash scripts/venv.sh; then
  echo "make test: the .venv could not be set up; nothing else can run" >&2
  exit 1
fi
step fmt "cargo fmt --check" fig_fmt cargo fmt --all -- --check
step clippy "cargo clippy -D warnings" fig_clippy cargo clippy --all-targets --workspace -- -D warnings
step module-cycles "module cycles" fig_last \
  python3 scripts/module_cycles.py src service-restart/src crates/handler-kit/src crates/cfn-protocol/src
step cargo-test "cargo test" fig_cargo_test \
  cargo test --workspace -- --skip invariants_hold_over_random_scenarios --skip runs_of_one_lock_never_overlap
step invariants "property test (TaskRun)" fig_invariants \
  cargo test --test invariants invariants_hold_over_random_scenarios -- --nocapture
step lock-race "property test (Lock race)" fig_invariants \
  cargo test --test lock_race runs_of_one_lock_never_overlap -- --nocapture
step invariants-restart "property test (Restart)" fig_invariants \
  cargo test -p service-restart --test invariants invariants_hold_over_random_scenarios -- --nocapture
step emulator-tests "emulator tests" fig_pytest \
  .venv/bin/python -m pytest -q -p no:cacheprovider emulator/ scripts/cfnkit/tests
step rpdk-rust-tests "rpdk-rust plugin tests" fig_pytest \
  .venv/bin/python -m pytest -q -p no:cacheprovider cfn/rpdk-rust/tests
step publish-check "publish check (crates, wheel)" fig_last bash scripts/publish-check.sh
step scaffold-check "cfn init scaffold check" fig_last bash scripts/scaffold-check.sh
step generated "generated check (TaskRun)" fig_last bash scripts/check-generated.sh
step generated-restart "generated check (Restart)" fig_last \
  bash scripts/check-generated.sh service-restart
step contract "cfn test (TaskRun)" fig_contract \
  env TASKRUN_BINARY=target/debug/bootstrap bash scripts/cfn-test.sh
step contract-restart "cfn test (ServiceRestart)" fig_contract \
  env TASKRUN_BINARY=target/debug/servicerestart-bootstrap bash scripts/cfn-test.sh --project service-restart
step lint-examples "example templates lint" fig_last bash cfn/lint-examples.sh
step cfn-lint-rules "cfn-lint rules tests" fig_pytest \
  .venv/bin/python -m pytest -q -p no:cacheprovider cfn/tests/test_lint_rules.py
step readme-snippets "README templates lint" fig_pytest \
  .venv/bin/python -m pytest -q -p no:cacheprovider cfn/tests/test_readme_snippets.py
step ecstasks-converter "ecsTasks converter tests" fig_pytest \
  .venv/bin/python -m pytest -q -p no:cacheprovider cfn/ecstasks/tests
if [ -f scripts/fuzz.sh ]; then
  # (scripts/fuzz.sh keeps libFuzzer's own log in $LOGS/fuzz.log; this step's is fuzz-run.log)
  step fuzz-run "fuzz (build, then 30 s)" fig_fuzz bash scripts/fuzz.sh --seconds 30
else
  skip "fuzz" "scripts/fuzz.sh not present"
fi

step disk "disk written" fig_last disk_written

total=$(awk -v a="$total_started" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
echo
echo "summary ($(fmt_time "$total") in all; full output of each step in $LOGS/):"
for i in "${!names[@]}"; do
  printf '  %-26s %s %7s  %s\n' "${names[$i]}" "${results[$i]}" "${times[$i]}" "${figures[$i]}"
done
: >"$LOGS/.ran"
if [ "$failed" -gt 0 ]; then
  echo "$failed step(s) FAILED (see above, and their logs in $LOGS/)"
  exit 1
fi
echo "all test suites passed"
