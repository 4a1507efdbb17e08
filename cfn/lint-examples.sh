#!/usr/bin/env bash
# Lints every template in examples/ the way users lint theirs (cfn/README.md):
#   cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml
# cfn-lint (pinned in cfn/requirements.txt) with the rules of cfn/cfnlint_taskrun, which check
# the properties of Org::ECS::TaskRun and Org::ECS::ServiceRestart resources against
# schema.json and service-restart/schema.json (cfn-lint alone knows neither type).
#   bash cfn/lint-examples.sh [more cfn-lint options]
# First, a template with a misspelt, a missing and an out-of-range property must fail with
# the rules' ids: a passing lint means something only if the rules are running.
# Prints one line when everything passed.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/venv.sh
shopt -s nullglob
templates=(examples/*.yaml examples/*.yml examples/*.json)
if [ "${#templates[@]}" -eq 0 ]; then
  echo "lint-examples: no templates in examples/" >&2
  exit 1
fi
lint=(.venv/bin/cfn-lint --append-rules cfn/cfnlint_taskrun "$@" --)

mkdir -p .tmp
canary=.tmp/lint-examples-canary.yaml
cat >"$canary" <<'EOF'
Resources:
  Migrate:
    Type: Org::ECS::TaskRun
    Properties:
      Cluster: shop
      Countt: 3
      Timeout: -5
  Restart:
    Type: Org::ECS::ServiceRestart
    Properties:
      Servise: api
EOF
set +e
said=$("${lint[@]}" "$canary" 2>&1)
status=$?
set -e
for id in E9002 E9003 E9005; do
  if [ "$status" -eq 0 ] || ! grep -q "^$id " <<<"$said"; then
    echo "lint-examples: the cfn/cfnlint_taskrun rules did not report $id on a broken template" \
      "(exit status $status); cfn-lint said:" >&2
    sed 's/^/    /' <<<"$said" >&2
    exit 1
  fi
done

"${lint[@]}" "${templates[@]}"
echo "lint-examples: ${#templates[@]} templates pass cfn-lint $(.venv/bin/cfn-lint --version | awk '{print $2}') with cfn/cfnlint_taskrun (Org::ECS properties checked against their schemas)"
