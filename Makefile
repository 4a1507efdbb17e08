# The two commands of the README. Each installs what it needs (.venv with pinned packages).
.PHONY: help demo test bench

help:
	@echo "make demo   the handler at work: a short deploy story against a local AWS emulator"
	@echo "            (first run builds the handler: a few minutes; later runs: seconds)"
	@echo "make test   every test (lint, unit, end-to-end, property, contract, ...), one line per"
	@echo "            step, logs in .tmp/test-logs/; VERBOSE=1 make test streams everything"
	@echo "make bench  the benchmark: the shipped handler's figures against their goals and"
	@echo "            beside the previous handler's (scripts/bench.md; builds both: several minutes)"

# A local demo: the debug handler (the build make test uses too) behind a local Lambda
# Invoke API, against the emulator.
demo:
	@bash scripts/demo.sh

# Every test: lint gates, unit, mock, end-to-end, property, emulator, plugin, contract tests,
# template lint (and the fuzzer when scripts/fuzz.sh exists).
test:
	@bash scripts/test.sh

# The benchmark: the shipped (dist) binary against the emulator, each figure with its goal.
bench:
	@bash scripts/bench.sh
