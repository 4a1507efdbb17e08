# The two commands of the README. Each installs what it needs (.venv with pinned packages).
.PHONY: help demo test bench

help:
	@echo "make demo   both types at work: two stacks deployed as CloudFormation would, against"
	@echo "            a local AWS emulator (the first run builds the handlers: a few minutes)"
	@echo "make test   every test (lint, unit, end-to-end, property, contract, ...), one line per"
	@echo "            step, logs in .tmp/test-logs/; VERBOSE=1 make test streams everything"
	@echo "make bench  the benchmark: the shipped handler's figures against their goals and beside"
	@echo "            those of an earlier commit's handler (BASELINE in scripts/bench.sh;"
	@echo "            scripts/bench.md; builds both: several minutes)"

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
