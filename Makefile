# The two commands of the README. Each installs what it needs (.venv with pinned packages).
.PHONY: demo test

# A local demo: the release handler behind a local Lambda Invoke API, against the emulator.
demo:
	bash scripts/demo.sh

# Every test: lint gates, unit, mock, end-to-end, emulator, contract tests, template lint.
test:
	bash scripts/test.sh
