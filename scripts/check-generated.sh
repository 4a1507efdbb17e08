#!/usr/bin/env bash
# schema.json is the one source: org-ecs-taskrun.json must be a link to it, and docs/ and
# resource-role.yaml must be exactly what `cfn generate` makes of it.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(readlink org-ecs-taskrun.json)" = "schema.json" ] || { echo "org-ecs-taskrun.json must link to schema.json" >&2; exit 1; }
.venv/bin/cfn validate
.venv/bin/cfn generate >/dev/null
if ! git diff --exit-code --stat -- docs resource-role.yaml || [ -n "$(git status --porcelain -- docs resource-role.yaml)" ]; then
  echo "docs/ or resource-role.yaml are out of date with schema.json: run '.venv/bin/cfn generate' and commit" >&2
  exit 1
fi
echo "generated files match schema.json"
