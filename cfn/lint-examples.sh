#!/usr/bin/env bash
# Lints every template in examples/ with cfn-lint (pinned in cfn/requirements.txt), giving it
# this resource type's schema as a registry schema. cfn/registry-schemas/ holds only a link to
# schema.json, since cfn-lint loads every *.json file under the directory it is given.
#   bash cfn/lint-examples.sh [more cfn-lint options]
# Two passes:
#   1. plain `cfn-lint --registry-schemas cfn/registry-schemas`, as a user would run it;
#   2. cfn/cfn_lint_strict.py, the same cfn-lint with its registry-schema lookup fixed so
#      that Org::ECS::TaskRun's properties are really checked against schema.json
#      (1.58.0 alone only learns that the type exists; see that file).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
shopt -s nullglob
templates=(examples/*.yaml examples/*.yml examples/*.json)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "lint-examples: no templates in examples/" >&2
  exit 1
fi
opts=(--registry-schemas cfn/registry-schemas --regions us-east-1 "$@")
.venv/bin/cfn-lint "${opts[@]}" -- "${templates[@]}"
.venv/bin/python cfn/cfn_lint_strict.py "${opts[@]}" -- "${templates[@]}"
echo "lint-examples: ${#templates[@]} templates pass cfn-lint $(.venv/bin/cfn-lint --version | awk '{print $2}') (plain and with the schema applied)"
