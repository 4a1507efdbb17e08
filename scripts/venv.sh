#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtualenv .venv with every pinned Python tool
# the project uses: the ECS emulator (emulator/requirements.txt) and the CloudFormation CLI
# toolchain (cfn/requirements.txt, with the rust plugin cfn/rpdk-rust installed editable).
# Re-running is cheap: pip only runs when a pin (or the plugin's pyproject.toml) changed.
#
# Python: $PYTHON if set, else python3.11, else python3 if it is 3.11 or newer.
# pip's output goes to .tmp/venv-install.log; it is shown only when the install fails.
set -euo pipefail
cd "$(dirname "$0")/.."

inputs=(emulator/requirements.txt cfn/requirements.txt cfn/rpdk-rust/pyproject.toml)
want=$( (cat "${inputs[@]}" 2>/dev/null || true) | sha256sum | cut -d" " -f1)
stamp=.venv/.requirements.sha

is_python311() {  # runs, and is Python 3.11 or newer (a pyenv shim of a missing version does not run)
  "$1" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' >/dev/null 2>&1
}
pick_python() {
  if [ -n "${PYTHON:-}" ]; then
    if is_python311 "$PYTHON"; then echo "$PYTHON"; return 0; fi
    local says="not found"
    command -v "$PYTHON" >/dev/null 2>&1 && says=$("$PYTHON" -V 2>&1 | head -n 1)
    echo "venv: PYTHON=$PYTHON does not run or is older than Python 3.11 ($says)" >&2
    return 1
  fi
  if command -v python3.11 >/dev/null 2>&1 && is_python311 python3.11; then
    echo python3.11; return 0
  fi
  if command -v python3 >/dev/null 2>&1 && is_python311 python3; then
    echo python3; return 0
  fi
  echo "venv: Python 3.11 is needed and was not found (no python3.11 on PATH, and python3 is" \
    "$(python3 -V 2>/dev/null || echo missing)); install it or set PYTHON=/path/to/python3.11" >&2
  return 1
}

venv_python_works() { [ -x .venv/bin/python ] && .venv/bin/python -c '' 2>/dev/null; }

# Fast path: nothing to do (no heading, no output).
if venv_python_works && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
# --check: exit 0 if .venv is up to date, 10 if it needs setting up (and a Python to do it
# with exists), 1 (with one line saying why) if it cannot be set up.
if [ "${1:-}" = --check ]; then
  venv_python_works || pick_python >/dev/null || exit 1
  exit 10
fi

mkdir -p .tmp
# One install at a time per checkout (`make demo` and `make test` started together).
exec 9>.tmp/venv.lock
if command -v flock >/dev/null 2>&1 && ! flock -n 9; then
  echo "venv: another scripts/venv.sh is setting up .venv in this checkout; waiting for it" >&2
  flock 9
  if venv_python_works && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
    exit 0
  fi
fi

log=.tmp/venv-install.log
echo "==> setting up .venv (pinned Python tools, first time about 1-2 minutes; log: $log)"
started=$SECONDS
: >"$log"
fail() {
  echo "venv: $1; last lines of $log:" >&2
  tail -n 25 "$log" | sed 's/^/    /' >&2
  echo "venv: full log: $log" >&2
  exit 1
}

if ! venv_python_works; then
  PY=$(pick_python) || exit 1
  # --clear: a .venv whose interpreter went away (Python upgraded, say) is rebuilt whole.
  if ! "$PY" -m venv --clear .venv >>"$log" 2>&1; then
    if grep -q ensurepip "$log"; then
      fail "'$PY -m venv' cannot install pip (on Debian/Ubuntu: apt-get install python3.11-venv)"
    fi
    fail "'$PY -m venv .venv' failed"
  fi
fi

args=(-r emulator/requirements.txt)
[ -f cfn/requirements.txt ] && args+=(-r cfn/requirements.txt)
# Everything pip and the build backends say (e.g. setuptools' BuildBackendWarning about the
# editable install of cfn/rpdk-rust) goes to the log.
if ! .venv/bin/python -m pip install --disable-pip-version-check --no-input --progress-bar off \
    "${args[@]}" >>"$log" 2>&1; then
  fail "pip install failed (network, or a pin that cannot be installed)"
fi
echo "$want" >"$stamp"
echo "    .venv ready ($(.venv/bin/python -V 2>&1), $(( SECONDS - started )) s)"
