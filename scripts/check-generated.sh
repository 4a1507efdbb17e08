#!/usr/bin/env bash
# A type's schema.json is its one source: <type>.json (e.g. org-ecs-taskrun.json) must be
# a link to it, and docs/, resource-role.yaml and the Rust model src/model/generated.rs
# (with the generator's settings src/model/codegen.json) must be exactly what
# `cfn generate` makes of it.
#
#   bash scripts/check-generated.sh [PROJECT_DIR]   (default `.`, Org::ECS::TaskRun;
#                                                    `service-restart` for the other type)
#
# `cfn validate` and `cfn generate` run in a temporary copy of the project (schema.json,
# .rpdk-config, the <type>.json link, docs/, resource-role.yaml, src/model/codegen.json),
# with the rust plugin installed in .venv; the result is compared with the working tree,
# which is never modified. On drift: a diff, and what to run.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/.venv
cd "${1:-.}"
root=$PWD

# Org::ECS::TaskRun -> org-ecs-taskrun.json, as cfn names it.
link=$(python3 -c 'import json; print(json.load(open(".rpdk-config"))["typeName"].lower().replace("::", "-") + ".json")')
if [ "$(readlink "$link" 2>/dev/null)" != "schema.json" ]; then
  echo "check-generated: $root/$link must be a link to schema.json (ln -sf schema.json $link)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/cfn" ]; then
  echo "check-generated: .venv/bin/cfn is missing: run scripts/venv.sh first" >&2
  exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/taskrun-generate.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
copy=$tmp/project
mkdir "$copy"
cp -p schema.json .rpdk-config "$copy/"
cp -P "$link" "$copy/"
[ -e resource-role.yaml ] && cp -p resource-role.yaml "$copy/"
[ -d docs ] && cp -Rp docs "$copy/"
if [ -e src/model/codegen.json ]; then
  mkdir -p "$copy/src/model"
  cp -p src/model/codegen.json "$copy/src/model/"
fi

log=$tmp/cfn.log
if ! (cd "$copy" && "$venv/bin/cfn" validate) >"$log" 2>&1; then
  echo "check-generated: cfn validate rejects schema.json:" >&2
  sed 's/^/    /' "$log" >&2
  exit 1
fi
if ! (cd "$copy" && "$venv/bin/cfn" generate) >>"$log" 2>&1; then
  echo "check-generated: cfn generate failed (in a temporary copy of the project):" >&2
  sed 's/^/    /' "$log" >&2
  exit 1
fi

drift=0
for path in docs resource-role.yaml .rpdk-config src/model/generated.rs; do
  if [ ! -e "$copy/$path" ] && [ ! -e "$path" ]; then continue; fi
  if ! out=$(cd "$tmp" && diff -ruN "$root/$path" "project/$path" 2>&1); then
    drift=1
    printf '%s\n' "$out" | sed "s#$root/##; s#project/#generated/#"
  fi
done
if [ "$drift" = 1 ]; then
  echo >&2
  echo "check-generated: docs/, resource-role.yaml, .rpdk-config or src/model/generated.rs differ from what \`cfn generate\` makes of schema.json (diff above: working tree -> generated)." >&2
  echo "check-generated: run \`$venv/bin/cfn generate\` in $root and commit docs/, resource-role.yaml and src/model/generated.rs" >&2
  exit 1
fi
echo "$(basename "$root"): schema valid; docs/, resource-role.yaml and src/model/generated.rs match cfn generate"
