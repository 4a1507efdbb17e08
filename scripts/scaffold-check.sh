#!/usr/bin/env bash
# The rust plugin's scaffold, end to end: in an empty temporary directory, `cfn init` a
# throwaway resource type, then check that it
#   0. has its model (src/model/generated.rs), which `cfn generate` writes again unchanged,
#   1. builds without a warning (cargo build), is formatted (cargo fmt --check) and
#      clippy-clean (-D warnings), and its handlers pass their unit tests (cargo test:
#      every action over an in-memory parameter store),
#   2. passes the contract tests offline: scripts/cfn-test.sh --project <it> (the local
#      AWS emulator, scripts/local_lambda.py in front of the debug binary, cfn test),
#   3. packs: cfn submit --dry-run (cargo lambda build, profile dist, x86_64, glibc 2.34;
#      the plugin checks handler.zip).
# Prints one summary line (each step's time) and exits 0 when every step passed.
#
#   bash scripts/scaffold-check.sh
#
# SCAFFOLD_TYPE_NAME   the type (default Scaffold::Check::Thing). A fixed name keeps the
#                      shared target directory to one set of its build outputs.
# CARGO_TARGET_DIR     default: this repository's target/, so that the scaffold reuses the
#                      dependencies (the AWS SDK) already compiled there.
# SCAFFOLD_FRESH_LOCK=1  let Cargo resolve the scaffold's dependencies afresh instead of
#                      starting from this repository's Cargo.lock (the versions the crates
#                      are tested with, and the ones compiled in target/; Cargo drops the
#                      entries the scaffold does not need). Fresh versions may mean a full
#                      SDK build.
# KEEP=1               keep the temporary directory (its path is printed).
# Logs: .tmp/scaffold-check/<step>.log. Every process this script starts is stopped on
# exit (each step runs in its own process group, stopped by its id); the temporary
# directory is removed.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
TYPE_NAME=${SCAFFOLD_TYPE_NAME:-Scaffold::Check::Thing}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
export AWS_EC2_METADATA_DISABLED=true
LOGS=$REPO/.tmp/scaffold-check
mkdir -p "$LOGS"
rm -f "$LOGS"/*.log

tmp=""
step_pid=""
cleanup() {
  local status=$?
  trap - EXIT INT TERM
  if [ -n "$step_pid" ] && kill -0 "$step_pid" 2>/dev/null; then
    # the step's whole process group (cargo and its rustc, cfn-test.sh and its servers)
    kill -TERM -- "-$step_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$step_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$step_pid" 2>/dev/null || true
    wait "$step_pid" 2>/dev/null || true
  fi
  if [ -n "$tmp" ] && [ -d "$tmp" ]; then
    if [ "${KEEP:-0}" = 1 ]; then
      echo "scaffold-check: kept $tmp" >&2
    else
      rm -rf "$tmp"
    fi
  fi
  if [ "$status" = 130 ] || [ "$status" = 143 ]; then
    echo "scaffold-check: interrupted; every process it started is stopped" >&2
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fail() {
  echo "scaffold-check: FAIL $TYPE_NAME at $1 (log: $2)" >&2
  [ -f "$2" ] && tail -n 40 "$2" >&2
  exit 1
}

# step NAME DIR COMMAND...: runs COMMAND in DIR in a process group of its own (so that
# cleanup can stop all of it by its id), output to $LOGS/NAME.log; sets step_seconds.
step_seconds=0
step() {
  local name=$1 dir=$2 started=$SECONDS status
  shift 2
  echo "scaffold-check: $name ..." >&2
  (cd "$dir" && exec setsid -w "$@") >"$LOGS/$name.log" 2>&1 </dev/null &
  step_pid=$!
  set +e
  wait "$step_pid"
  status=$?
  set -e
  step_pid=""
  step_seconds=$((SECONDS - started))
  [ "$status" = 0 ] || fail "$name (exit $status)" "$LOGS/$name.log"
}

total_started=$SECONDS
bash scripts/venv.sh
CFN=$REPO/.venv/bin/cfn

tmp=$(mktemp -d "${TMPDIR:-/tmp}/scaffold-check.XXXXXX")
project=$tmp/project
mkdir "$project"
# The repository's dev profile (Cargo.toml), from a config file above the project: the
# scaffold then reuses the dependencies compiled in the shared target/ instead of building
# a second set of them with full debug info, which a CI disk ran out of space for.
mkdir "$tmp/.cargo"
cat >"$tmp/.cargo/config.toml" <<'TOML'
[profile.dev]
debug = "line-tables-only"

[profile.dev.package."*"]
debug = false
TOML

# --- cfn init -----------------------------------------------------------------------
# Non-interactive: the type name and artifact type are given, and the rust plugin is the
# only language plugin of .venv (cfn picks it without asking).
step init "$project" "$CFN" init --type-name "$TYPE_NAME" --artifact-type RESOURCE
t_init=$step_seconds
for f in .rpdk-config Cargo.toml src/main.rs src/resource.rs src/model.rs \
  src/model/generated.rs schema.json README.md .gitignore inputs/inputs_1_create.json \
  inputs/inputs_1_update.json inputs/inputs_1_invalid.json resource-role.yaml; do
  [ -e "$project/$f" ] || fail "init: no $f" "$LOGS/init.log"
done
BINARY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["settings"]["binary"])' \
  "$project/.rpdk-config")
PACKAGE=$(sed -n 's/^name = "\(.*\)"$/\1/p' "$project/Cargo.toml" | head -n 1)
ZIP=$(python3 -c 'import sys; print("-".join(sys.argv[1].split("::")).lower() + ".zip")' "$TYPE_NAME")

# --- cfn generate: the model cfn init wrote is the one cfn generate writes ----------------
cp "$project/src/model/generated.rs" "$tmp/generated.rs"
step generate "$project" "$CFN" generate
t_generate=$step_seconds
if ! diff -u "$tmp/generated.rs" "$project/src/model/generated.rs" >>"$LOGS/generate.log"; then
  fail "generate: src/model/generated.rs differs from the one cfn init wrote" "$LOGS/generate.log"
fi

if [ "${SCAFFOLD_FRESH_LOCK:-0}" != 1 ]; then
  cp "$REPO/Cargo.lock" "$project/Cargo.lock"
fi

# --- cargo build, cargo test ------------------------------------------------------------
step build "$project" cargo build --bin "$BINARY"
t_build=$step_seconds
# warnings of the scaffold itself (cargo replays them when the build is fresh); those of
# the kit's crates are theirs
if grep -q "^warning: \`$PACKAGE\`" "$LOGS/build.log"; then
  fail "build: warnings" "$LOGS/build.log"
fi
step fmt "$project" cargo fmt --check
step clippy "$project" cargo clippy --all-targets -- -D warnings
t_clippy=$step_seconds
step unit-tests "$project" cargo test
t_unit=$step_seconds
unit=$(grep -Eo 'test result: ok\. [0-9]+ passed' "$LOGS/unit-tests.log" | awk '{ n += $4 } END { print n + 0 }')

# --- cfn test, offline ------------------------------------------------------------------
step cfn-test "$REPO" env TASKRUN_BINARY="$CARGO_TARGET_DIR/debug/$BINARY" \
  bash scripts/cfn-test.sh --project "$project"
t_cfn=$step_seconds
contract=$(grep -Eo '[0-9]+ passed(, [0-9]+ skipped)?' "$LOGS/cfn-test.log" | tail -n 1)

# --- cfn submit --dry-run -----------------------------------------------------------------
step submit "$project" "$CFN" submit --dry-run
t_submit=$step_seconds
[ -f "$project/$ZIP" ] || fail "submit: no $ZIP" "$LOGS/submit.log"
size=$(python3 - "$project/$ZIP" <<'EOF'
import io, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as package:
    names = set(package.namelist())
    missing = {"handler.zip", "schema.json", ".rpdk-config"} - names
    if missing:
        sys.exit(f"the package lacks {', '.join(sorted(missing))}")
    with zipfile.ZipFile(io.BytesIO(package.read("handler.zip"))) as handler:
        if handler.namelist() != ["bootstrap"]:
            sys.exit(f"handler.zip holds {handler.namelist()}, not bootstrap alone")
        bootstrap = handler.getinfo("bootstrap").file_size
import os
print(f"{os.path.getsize(sys.argv[1]) / 1048576:.1f} MiB, bootstrap {bootstrap / 1048576:.1f} MiB")
EOF
) || fail "submit: package check" "$LOGS/submit.log"

echo "scaffold-check: PASS $TYPE_NAME: init ${t_init}s, generate ${t_generate}s, build ${t_build}s, clippy ${t_clippy}s, cargo test ${t_unit}s (${unit} passed), cfn test ${t_cfn}s (${contract}), submit --dry-run ${t_submit}s ($ZIP $size); total $((SECONDS - total_started))s"
