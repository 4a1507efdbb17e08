#!/usr/bin/env bash
# Benchmark of the Org::ECS::TaskRun handler (and, in figure 8, Org::ECS::ServiceRestart):
# the real binaries that ship behind a local Lambda Runtime API (scripts/bench.py), against
# their own AWS emulator. The current tree's handler and the previous one (git commit
# $BASELINE below) are both built and run in the same run; every row of the printed table
# shows both, each figure beside its goal. Also written to .tmp/bench/<label>.txt. Figure 9
# (what waiting costs, 1 min to 35 h runs) plays tests/operation_cost.rs over the simulation
# on a virtual clock, in this tree and in a worktree of $BASELINE.
# `make bench` runs it; scripts/bench.md says how each figure is measured.
#
#   bash scripts/bench.sh [--quick] [--baseline REV] [--rebuild-previous] [--no-previous] [--no-many]
#                         [--binary PATH] [--label NAME] [-- bench.py options]
#
# Builds both handlers as `cfn submit` packages them (profile dist, x86_64, glibc 2.34, with
# cargo-lambda): the current tree's, and the previous one from a git worktree of $BASELINE
# (.tmp/bench-previous-worktree, never committed, removed after the build) with the same
# command and the same CARGO_TARGET_DIR, into .tmp/bench/previous-<commit>/ (kept: later
# runs with the same commit and toolchain reuse it).
# --baseline REV   another previous handler for this run (or edit BASELINE below)
# --rebuild-previous  build the previous handler again even if it was built before
# --no-previous    the current handler only
# --quick          no 60 s tasks, figure 8 only K=25 TaskRuns
# --no-many        no figure 8 (many at once)
# --binary PATH    benchmark PATH as the current TaskRun handler (nothing of the current built;
#                  figures 7 and 8's ServiceRestart are then n/a for it)
# About 10 minutes on 2 cores (figures 1-7 ~3, figure 8 ~7; --quick ~2.5, --no-many ~3), plus the
# builds: seconds when nothing changed, ~2 minutes per binary when the tree's crates changed,
# ~10 more the very first time (the dependencies). scripts/bench.md has the measured times.
set -euo pipefail
cd "$(dirname "$0")/.."

# The previous handler: the last landed main before the "many at once" work. Move it to the
# commit the next comparison should start from (any rev git understands), or use --baseline.
BASELINE=e5a511e

binary=""
label="bench"
quick=""
previous=1
rebuild_previous=""
many=1
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) binary=${2:?--binary needs a path}; shift 2 ;;
    --binary=*) binary=${1#--binary=}; shift ;;
    --label) label=${2:?--label needs a name}; shift 2 ;;
    --label=*) label=${1#--label=}; shift ;;
    --baseline) BASELINE=${2:?--baseline needs a git revision}; shift 2 ;;
    --baseline=*) BASELINE=${1#--baseline=}; shift ;;
    --no-previous) previous=""; shift ;;
    --rebuild-previous) rebuild_previous=1; shift ;;
    --no-many) many=""; shift ;;
    --quick) quick=1; shift ;;
    --) shift; extra=("$@"); break ;;
    -h|--help) sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench: unknown argument $1 (see --help)" >&2; exit 2 ;;
  esac
done
case "$label" in
  */*|.*|"") echo "bench: --label must be a plain name" >&2; exit 2 ;;
esac

DIR=.tmp/bench
mkdir -p "$DIR"
ROOT=$PWD
started=$(date +%s)
export BENCH_STARTED_EPOCH=$started  # bench.py's progress lines count from here too
say() {  # a progress line with the time since the start
  local t=$(( $(date +%s) - started ))
  printf '==> [+%dm%02ds] %s\n' $((t / 60)) $((t % 60)) "$*" >&2
}
build_times=()

emu_pid=""
worktree=""
pid_file="$DIR/$label-pids.txt"
: >"$pid_file"
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$emu_pid" ] && kill -0 "$emu_pid" 2>/dev/null; then
    kill -TERM "$emu_pid" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$emu_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$emu_pid" 2>/dev/null || true
    wait "$emu_pid" 2>/dev/null || true
  fi
  # Every handler process bench.py started, by its PID (and only while it still runs that binary).
  local left=() pid exe
  if [ -s "$pid_file" ]; then
    while read -r pid exe; do
      case "$(readlink "/proc/$pid/exe" 2>/dev/null || true)" in
        "$exe"|"$exe (deleted)") kill -KILL "$pid" 2>/dev/null || true; left+=("$pid") ;;
      esac
    done <"$pid_file"
  fi
  if [ ${#left[@]} -gt 0 ]; then
    echo "bench: stopped ${#left[@]} handler process(es) left running: ${left[*]}" >&2
    sleep 0.2
  fi
  # Nothing the bench started may be left: checked with ps (a PID counts while it runs its binary).
  local alive=()
  [ -z "$emu_pid" ] || ! kill -0 "$emu_pid" 2>/dev/null || alive+=("$emu_pid")
  for pid in ${left[@]+"${left[@]}"}; do
    if ps -o stat= -p "$pid" 2>/dev/null | grep -qv '^Z'; then alive+=("$pid"); fi
  done
  if [ ${#alive[@]} -gt 0 ]; then
    echo "bench: still running after the bench:" >&2
    ps -o pid=,stat=,args= -p "$(IFS=,; echo "${alive[*]}")" >&2 || true
    [ "$status" -ne 0 ] || status=1
  fi
  if [ -n "$worktree" ] && [ -d "$worktree" ]; then  # a build of the previous handler cut short
    git worktree remove --force "$worktree" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

say "venv (.venv with the pinned packages)"
bash scripts/venv.sh

# The same cargo-lambda command `cfn submit` runs (cfn/rpdk-rust codegen.py build_command),
# from the package's folder: $1 folder, $2 binary, $3 lambda dir, $4 log.
lambda_build() {
  ( cd "$1" && PATH="$ROOT/.venv/bin:$PATH" "$ROOT/.venv/bin/cargo-lambda" lambda build --profile dist \
      --target x86_64-unknown-linux-gnu.2.34 --bin "$2" --output-format binary \
      --lambda-dir "$3" ) >"$4" 2>&1
}
build_one() {  # $1 what, $2 folder, $3 binary, $4 lambda dir, $5 log
  local t0 t
  t0=$(date +%s)
  say "build: $1 (cargo-lambda, profile dist, x86_64, glibc 2.34; incremental, the first one takes minutes)"
  if ! lambda_build "$2" "$3" "$4" "$5"; then
    echo "bench: the build of $1 failed; its log ($5) ends:" >&2
    tail -n 20 "$5" >&2
    exit 1
  fi
  t=$(( $(date +%s) - t0 ))
  say "build: $1 done in ${t} s"
  build_times+=("$1 ${t} s")
}

target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null \
  | .venv/bin/python -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
[ -n "$target_dir" ] || { echo "bench: cargo metadata gave no target directory" >&2; exit 1; }

prev_args=()
if [ -n "$previous" ]; then
  prev_sha=$(git rev-parse --verify --quiet "${BASELINE}^{commit}") \
    || { echo "bench: the baseline $BASELINE is not a commit of this repository" >&2; exit 2; }
  prev_dir="$DIR/previous-${prev_sha:0:12}"
  prev_bins=("$prev_dir/lambda/bootstrap/bootstrap" "$prev_dir/lambda/servicerestart-bootstrap/bootstrap")
  # What the previous binaries are: the commit, the toolchain and the command. A build of one
  # commit with one toolchain gives the same binary, so it is built once and kept: building it
  # again each run costs minutes, because the crates both trees hold unchanged (cfn-protocol)
  # share one slot of the target directory, and a build of either tree makes the other's
  # dependents stale.
  stamp="$prev_sha; $(rustc -V); $(.venv/bin/cargo-lambda lambda --version | head -n 1); profile dist, x86_64-unknown-linux-gnu.2.34"
  if [ -z "$rebuild_previous" ] && [ -x "${prev_bins[0]}" ] && [ -x "${prev_bins[1]}" ] \
      && [ "$(cat "$prev_dir/stamp" 2>/dev/null || true)" = "$stamp" ]; then
    say "build: previous handlers of $BASELINE (${prev_sha:0:12}): built by an earlier run with this toolchain, reused ($prev_dir/)"
    build_times+=("previous handlers reused")
  else
    rm -f "$prev_dir/stamp"
    worktree="$ROOT/.tmp/bench-previous-worktree"
    if [ -e "$worktree" ]; then git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; fi
    git worktree prune
    say "worktree of $BASELINE (${prev_sha:0:12}) in .tmp/bench-previous-worktree"
    git worktree add --detach --quiet "$worktree" "$prev_sha"
    # The same target directory as the current tree: the dependencies are not built again.
    export CARGO_TARGET_DIR="$target_dir"
    build_one "previous TaskRun handler" "$worktree" bootstrap "$ROOT/$prev_dir/lambda" "$DIR/previous-build.log"
    build_one "previous ServiceRestart handler" "$worktree/service-restart" servicerestart-bootstrap \
      "$ROOT/$prev_dir/lambda" "$DIR/previous-sr-build.log"
    unset CARGO_TARGET_DIR
    echo "$stamp" >"$prev_dir/stamp"
    git worktree remove --force "$worktree"
    worktree=""
    say "worktree removed"
  fi
  prev_args=(--previous-binary "${prev_bins[0]}" --previous-sr-binary "${prev_bins[1]}"
             --previous-zip-binary "${prev_bins[0]}" --previous-what "$BASELINE (${prev_sha:0:12})")

  # Figure 9 of the previous handler: tests/operation_cost.rs as it is in this tree, run in a
  # worktree of the baseline (the file uses only what both trees have). Kept beside the
  # previous binaries, keyed by the file's digest and the stamp (the simulation is on a
  # virtual clock: the same commit and file give the same figures).
  cost_key="$stamp; $(sha256sum tests/operation_cost.rs | cut -c1-16)"
  prev_cost="$prev_dir/cost.jsonl"
  if [ -n "$rebuild_previous" ] || [ ! -s "$prev_cost" ] \
      || [ "$(cat "$prev_dir/cost-stamp" 2>/dev/null || true)" != "$cost_key" ]; then
    rm -f "$prev_cost" "$prev_dir/cost-stamp"
    worktree="$ROOT/.tmp/bench-previous-worktree"
    if [ -e "$worktree" ]; then git worktree remove --force "$worktree" >/dev/null 2>&1 || rm -rf "$worktree"; fi
    git worktree prune
    git worktree add --detach --quiet "$worktree" "$prev_sha"
    # The baseline (e5a511e) spelled two names otherwise: the simulation's gateway was
    # `backend.ecs`, and a TaskRun was built as `TaskRun { backend }`.
    sed -e 's/backend\.gateway\./backend.ecs./g' \
        -e 's/TaskRun::new(backend\.clone())/TaskRun { backend: backend.clone() }/' \
        tests/operation_cost.rs >"$worktree/tests/operation_cost.rs"
    say "figure 9 of the previous handler (the simulation, in a worktree of $BASELINE; the first time: a test build)"
    if ( cd "$worktree" && CARGO_TARGET_DIR="$target_dir" COST_OUT="$ROOT/$prev_cost" \
           cargo test --test operation_cost -- --ignored --exact what_waiting_costs ) \
         >"$DIR/previous-cost.log" 2>&1; then
      echo "$cost_key" >"$prev_dir/cost-stamp"
    else
      say "figure 9 of the previous handler failed (log: $DIR/previous-cost.log); shown as n/a"
      rm -f "$prev_cost"
    fi
    git worktree remove --force "$worktree"
    worktree=""
  fi
fi

cur_args=()
if [ -z "$binary" ]; then
  # Built after the previous one: both share the target directory, so the tree's own crates
  # are compiled again here when the previous ones were just built.
  build_one "current TaskRun handler" . bootstrap "$target_dir/lambda/x86_64" "$DIR/dist-build.log"
  build_one "current ServiceRestart handler" service-restart servicerestart-bootstrap \
    "$target_dir/lambda/x86_64" "$DIR/dist-sr-build.log"
  binary="$target_dir/lambda/x86_64/bootstrap/bootstrap"
  cur_args=(--sr-binary "$target_dir/lambda/x86_64/servicerestart-bootstrap/bootstrap"
            --zip-binary "$binary" --current-what "the tree ($(git rev-parse --short HEAD) + changes)")
else
  [ -x "$binary" ] || { echo "bench: --binary $binary is not an executable file" >&2; exit 2; }
  cur_args=(--current-what "given by --binary")
fi

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
say "emulator $url (pid $emu_pid); benchmarking $binary as 'current'${previous:+ beside $BASELINE as 'previous'}"

many_args=()
if [ -z "$many" ]; then
  many_args=(--many "" --many-sr 0 --many-throttled 0)
elif [ -n "$quick" ]; then
  many_args=(--many 25 --many-sr 0 --many-throttled 0)
fi
status=0
.venv/bin/python scripts/bench.py --binary "$binary" --label "$label" --emulator-url "$url" \
  --emulator-pid "$emu_pid" --pid-file "$pid_file" \
  --build-times "$(IFS=';'; echo "${build_times[*]:-}" | sed 's/;/; /g')" \
  ${quick:+--quick} ${cur_args[@]+"${cur_args[@]}"} ${prev_args[@]+"${prev_args[@]}"} \
  ${many_args[@]+"${many_args[@]}"} ${extra[@]+"${extra[@]}"} || status=$?

# Figure 9, what waiting costs: the tree's handler (its library) over the simulation on a
# virtual clock, 1 min to 35 h runs (tests/operation_cost.rs), beside the previous one's.
say "figure 9: what waiting costs (simulation, virtual clock; a test build when the tree changed)"
cost_table="$DIR/$label-cost.txt"
if COST_OUT="$DIR/$label-cost.jsonl" COST_PREVIOUS="${prev_cost:-/nonexistent}" \
     cargo test --test operation_cost -- --ignored --exact what_waiting_costs --nocapture \
     >"$DIR/$label-cost.log" 2>&1; then
  sed -n '/^9\. What waiting costs/,/longest invocation <= 30 s/p' "$DIR/$label-cost.log" >"$cost_table"
  cat "$cost_table"
  cat "$cost_table" >>"$DIR/$label.txt"
else
  echo "bench: figure 9 failed (log: $DIR/$label-cost.log)" >&2
  tail -n 20 "$DIR/$label-cost.log" >&2
  status=1
fi
say "bench done (exit $status)"
exit "$status"
