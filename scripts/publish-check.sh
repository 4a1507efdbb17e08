#!/usr/bin/env bash
# Are the shareable parts publishable? Two checks, one summary line:
#
# 1. crates: `cargo publish --dry-run -p cfn-protocol -p handler-kit` (metadata, the files
#    packaged, path dependencies versioned, each crate built from its package alone, the
#    unpublished cfn-protocol resolved locally for handler-kit). Default features only, in
#    the workspace's target directory: no AWS SDK build. Fails too when cargo says a
#    manifest has no description or license. Without crates.io (the dry run reads its
#    index) it falls back to what cargo can do offline, and says so: cfn-protocol packaged
#    and verified, both crates packaged without verification.
# 2. plugin: cfn/rpdk-rust built as a wheel (from a copy: nothing is written into the
#    tree), installed into a new virtual environment with its dependencies at the .venv's
#    versions, then there: the entry point `rust` of `rpdk.v1.languages` loads,
#    `cfn init --help` runs, and in a new project `cfn init` picks rust, `cfn generate`
#    runs and `cfn submit --dry-run` packages a prebuilt handler zip (a fixture ELF from
#    the plugin's tests) into the type's package.
#
# The wheels the new environment installs are kept in .tmp/publish-check/wheelhouse
# (downloaded once with `pip download`, again when the .venv's versions change), so later
# runs need no network for this part. Everything else lives in a temporary folder that is
# removed at exit. The full output of the last run is in .tmp/publish-check/last.log.
#
#   scripts/publish-check.sh            (needs the .venv: scripts/venv.sh)
#   scripts/publish-check.sh --offline  cargo part offline straight away
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=${AWS_REGION:-us-east-1}
# A package is built as a workspace of its own, without the repository's dev profile: no
# debug info (the dependencies then are the ones already compiled in target/, and the
# build's size stays within make test's disk budget).
export CARGO_PROFILE_DEV_DEBUG=${CARGO_PROFILE_DEV_DEBUG:-false}

OFFLINE=0
case "${1:-}" in
  --offline) OFFLINE=1 ;;
  "") ;;
  *) echo "usage: scripts/publish-check.sh [--offline]" >&2; exit 2 ;;
esac
case "${CARGO_NET_OFFLINE:-}" in true|1) OFFLINE=1 ;; esac

CRATES=(cfn-protocol handler-kit)
PY=$ROOT/.venv/bin/python
STATE=$ROOT/.tmp/publish-check
WHEELHOUSE=$STATE/wheelhouse
LOG=$STATE/last.log
started=$(date +%s)

mkdir -p "$STATE"
: >"$LOG"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/publish-check.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

elapsed() { echo "$(($(date +%s) - started))s"; }
fail() {  # fail "what failed": the end of the log, then the summary line
  {
    echo "--- last 30 lines of ${LOG#"$ROOT"/} ---"
    grep -v '^[[:space:]]*$' "$LOG" | tail -n 30 | cut -c1-300
    echo "---"
  } >&2
  echo "publish-check: FAIL in $(elapsed): $1 (full output: ${LOG#"$ROOT"/})"
  exit 1
}
run() {  # run COMMAND...: output to the log, status returned
  echo "+ [$(elapsed)] $*" >>"$LOG"
  "$@" >>"$LOG" 2>&1
}

[ -x "$PY" ] || fail ".venv missing: run scripts/venv.sh first"
command -v cargo >/dev/null 2>&1 || fail "cargo is not on PATH"

# --- 1. the crates -----------------------------------------------------------------------
pkg_args=()
for c in "${CRATES[@]}"; do pkg_args+=(-p "$c"); done
crates_mode=""
if [ "$OFFLINE" = 0 ]; then
  mark=$(wc -l <"$LOG")
  if run cargo publish --dry-run --allow-dirty "${pkg_args[@]}"; then
    crates_mode="cargo publish --dry-run ok"
  elif tail -n +"$((mark + 1))" "$LOG" | grep -qiE 'spurious network error|could(n.t| not) resolve host|failed to (query replaced source|download|fetch|update)|network (failure|is unreachable)|timed out|connection (refused|reset)|HTTP request'; then
    echo "(crates.io unreachable: the offline checks instead)" >>"$LOG"
    OFFLINE=1
  else
    fail "cargo publish --dry-run ${pkg_args[*]}"
  fi
fi
if [ "$OFFLINE" = 1 ]; then
  # Offline, cargo verifies a package only when its dependencies are all on disk: the
  # unpublished cfn-protocol is not, for handler-kit; packaging alone still checks the
  # manifest, the file list and that the path dependency has a version.
  run cargo package --offline --allow-dirty -p cfn-protocol || fail "cargo package --offline -p cfn-protocol"
  run cargo package --offline --no-verify --allow-dirty "${pkg_args[@]}" \
    || fail "cargo package --offline --no-verify ${pkg_args[*]}"
  crates_mode="offline, cargo package only (handler-kit unverified)"
fi
if grep -E '^warning: manifest has no ' "$LOG" | grep -qE 'description|license'; then
  fail "a crate manifest has no description or license"
fi

# --- 2. the plugin wheel -----------------------------------------------------------------
# The interpreter the .venv was made from, so that the wheelhouse's binary wheels fit.
BASE_PY=$("$PY" -c 'import sys; print(getattr(sys, "_base_executable", "") or sys.executable)')
[ -x "$BASE_PY" ] || BASE_PY=python3

# The .venv's versions, as constraints for the dependencies of the wheel (not the plugin
# itself: the .venv has it editable).
"$PY" -m pip freeze --exclude-editable 2>>"$LOG" | grep -vE '^(-e |cloudformation-cli-rust-plugin)|@ file:' \
  >"$TMP/constraints.txt" || fail "pip freeze of the .venv"
if ! cmp -s "$TMP/constraints.txt" "$STATE/constraints.txt" || [ ! -d "$WHEELHOUSE" ]; then
  rm -rf "$WHEELHOUSE.new"
  if run "$PY" -m pip download -q -d "$WHEELHOUSE.new" -c "$TMP/constraints.txt" \
    cloudformation-cli PyYAML "setuptools>=77" wheel; then
    # Dependencies published only as source: made wheels once, here.
    for sdist in "$WHEELHOUSE.new"/*.tar.gz "$WHEELHOUSE.new"/*.zip; do
      [ -e "$sdist" ] || continue
      run "$PY" -m pip wheel -q --no-deps --no-index --find-links "$WHEELHOUSE.new" \
        -w "$WHEELHOUSE.new" "$sdist" || { rm -rf "$WHEELHOUSE.new"; fail "pip wheel $(basename "$sdist")"; }
      rm -f "$sdist"
    done
    rm -rf "$WHEELHOUSE" && mv "$WHEELHOUSE.new" "$WHEELHOUSE"
    cp "$TMP/constraints.txt" "$STATE/constraints.txt"
  elif [ -d "$WHEELHOUSE" ]; then
    rm -rf "$WHEELHOUSE.new"
    echo "(pip download failed: the wheelhouse of an earlier run instead)" >>"$LOG"
  else
    rm -rf "$WHEELHOUSE.new"
    fail "pip download of the wheelhouse (network needed once; then it is kept in ${WHEELHOUSE#"$ROOT"/})"
  fi
fi
offline_pip=(--no-index --find-links "$WHEELHOUSE")

# Built from a copy: an in-tree build would leave build/ and egg-info behind.
mkdir -p "$TMP/src" "$TMP/dist"
tar -C cfn/rpdk-rust --exclude=./build --exclude='*.egg-info' --exclude=__pycache__ \
  --exclude=./.pytest_cache --exclude=./tests -cf - . | tar -C "$TMP/src" -xf - \
  || fail "copy of cfn/rpdk-rust"
run "$PY" -m pip wheel -q --no-deps "${offline_pip[@]}" -w "$TMP/dist" "$TMP/src" \
  || fail "pip wheel cfn/rpdk-rust"
WHEEL=$(ls "$TMP"/dist/*.whl 2>/dev/null | head -n 1)
[ -n "$WHEEL" ] || fail "no wheel built"

# Every file of the package (code and data) is in the wheel, with the entry point.
run "$PY" - "$WHEEL" cfn/rpdk-rust/src <<'EOF' || fail "wheel contents"
import sys, zipfile
from pathlib import Path
wheel, src = zipfile.ZipFile(sys.argv[1]), Path(sys.argv[2])
names = set(wheel.namelist())
wanted = {p.relative_to(src).as_posix() for p in (src / "rpdk" / "rust").rglob("*")
          if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"}
missing = sorted(wanted - names)
info = next(n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA"))
entry_points = wheel.read(f"{info}/entry_points.txt").decode()
problems = [f"missing from the wheel: {m}" for m in missing]
if "rust = rpdk.rust.codegen:RustLanguagePlugin" not in entry_points:
    problems.append("no entry point rust in rpdk.v1.languages")
if not any(n.startswith(f"{info}/licenses/") for n in names):
    problems.append("no license file in the wheel")
print(f"{len(names)} files, {len(wanted)} from the package, entry points:\n{entry_points}")
sys.exit("\n".join(problems) or None)
EOF

# A new environment with nothing in it but the wheel and its dependencies.
run "$BASE_PY" -m venv --without-pip "$TMP/venv" || fail "python -m venv"
run "$PY" -m pip --python "$TMP/venv/bin/python" install -q --no-compile "${offline_pip[@]}" "$WHEEL" \
  || fail "pip install of the wheel into a new venv"
V="$TMP/venv/bin"
run "$V/python" -c '
from importlib.metadata import entry_points
eps = [e for e in entry_points(group="rpdk.v1.languages")]
print([e.name for e in eps])
assert [e.name for e in eps] == ["rust"], "languages: %s" % [e.name for e in eps]
plugin = eps[0].load()
print(plugin.__module__, plugin.__name__)
' || fail "entry point rust of rpdk.v1.languages in the new venv"
run "$V/cfn" init --help || fail "cfn init --help in the new venv"

mkdir -p "$TMP/project"
(
  cd "$TMP/project" || exit 1
  run "$V/cfn" init -t Org::Check::Thing -a RESOURCE </dev/null || exit 1
  "$V/python" -c 'import json; c = json.load(open(".rpdk-config")); assert c["language"] == "rust", c' \
    >>"$LOG" 2>&1 || exit 2
  run "$V/cfn" generate </dev/null || exit 3
) || case $? in
  1) fail "cfn init in the new venv" ;;
  2) fail "cfn init did not pick the language rust" ;;
  *) fail "cfn generate in the new venv" ;;
esac
# The handler is a fixture (an ELF header that looks linked, from the plugin's tests): the
# package step runs as it does for a built binary, without building one.
run "$V/python" - "$TMP/handler.zip" "$TMP/project/.rpdk-config" "$ROOT/cfn/rpdk-rust/tests" <<'EOF' \
  || fail "fixture handler zip"
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[3])
import elf_fixtures
Path(sys.argv[1]).write_bytes(elf_fixtures.make_zip({"bootstrap": elf_fixtures.make_elf()}))
config = Path(sys.argv[2])
settings = json.loads(config.read_text())
settings["settings"]["packageSources"] = False  # a bare cfn project has no Cargo sources
config.write_text(json.dumps(settings, indent=4))
EOF
(
  cd "$TMP/project" || exit 1
  RPDK_RUST_HANDLER_ZIP="$TMP/handler.zip" run "$V/cfn" submit --dry-run </dev/null
) || fail "cfn submit --dry-run in the new venv"
run "$V/python" -c '
import sys, zipfile
names = zipfile.ZipFile("'"$TMP"'/project/org-check-thing.zip").namelist()
print(names)
assert {"handler.zip", "schema.json", ".rpdk-config"} <= set(names), names
' || fail "the package cfn submit --dry-run wrote"

size=$(($(wc -c <"$WHEEL") / 1024))
echo "publish-check: PASS in $(elapsed): crates: $crates_mode; wheel (${size} KiB) in a new venv: language rust, cfn init/generate/submit ok"
