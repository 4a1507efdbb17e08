#!/usr/bin/env bash
# Every test of the project, from a fresh clone: style and lint gates, the Rust unit,
# mock and end-to-end tests (against the emulator), the emulator's own tests, the schema
# and generated-docs checks, the offline CloudFormation contract tests and the example
# templates' lint.
set -euo pipefail
cd "$(dirname "$0")/.."
export AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1

step() { printf '\n==> %s\n' "$*"; }

step "virtualenv (.venv, pinned packages)"
bash scripts/venv.sh

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy -D warnings"
cargo clippy --all-targets --workspace -- -D warnings

step "cargo test (unit, SDK-mock handler tests, end-to-end tests against the emulator)"
cargo test --workspace

step "emulator tests"
.venv/bin/python -m pytest -q -p no:cacheprovider emulator/test_emulator.py

step "schema: cfn validate, and docs/ + resource-role.yaml regenerated without drift"
bash scripts/check-generated.sh

step "contract tests: cfn test against the real handler binary behind a local Invoke API"
TASKRUN_BINARY=target/debug/bootstrap bash scripts/cfn-test.sh

step "example templates: cfn-lint with this type's schema"
bash cfn/lint-examples.sh

printf '\nall test suites passed\n'
