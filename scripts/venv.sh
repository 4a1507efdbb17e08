#!/usr/bin/env bash
# Creates (or refreshes) the project-local virtualenv .venv with every pinned Python tool
# the project uses: the ECS emulator (emulator/requirements.txt) and the CloudFormation CLI
# toolchain (cfn/requirements.txt). Re-running is cheap: pip only installs when a pin changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.requirements.sha
want=$( (cat emulator/requirements.txt cfn/requirements.txt 2>/dev/null || true) | sha256sum | cut -d" " -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --upgrade pip
  args=(-r emulator/requirements.txt)
  [ -f cfn/requirements.txt ] && args+=(-r cfn/requirements.txt)
  .venv/bin/python -m pip install --quiet --disable-pip-version-check "${args[@]}"
  echo "$want" > "$stamp"
fi
