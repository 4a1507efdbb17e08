"""Runs the documented lint command and reads its findings (shared by the tests here).

The command users run (cfn/README.md), from the repository root:

    cfn-lint --append-rules cfn/cfnlint_taskrun -- template.yaml

Its default text output is one finding per block: `RULE message` then `file:line:col`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RULES = "cfn/cfnlint_taskrun"
#: The documented command, without the templates that follow `--`.
COMMAND = ["cfn-lint", "--append-rules", RULES, "--"]


def cfn_lint() -> str:
    """The cfn-lint of the Python running the tests (.venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "cfn-lint"
    if beside.exists():
        return str(beside)
    found = shutil.which("cfn-lint")
    if not found:
        raise RuntimeError("cfn-lint is not installed: run `bash scripts/venv.sh`")
    return found


@dataclass(frozen=True)
class Finding:
    rule: str
    message: str
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.rule} {self.message}"


@dataclass
class Result:
    returncode: int
    findings: list[Finding]
    stdout: str
    stderr: str

    def rules(self) -> list[str]:
        return [f.rule for f in self.findings]

    def by_rule(self, rule: str) -> list[Finding]:
        return [f for f in self.findings if f.rule == rule]

    def report(self) -> str:
        lines = [str(f) for f in self.findings] or ["(no findings)"]
        if self.stderr.strip():
            lines.append("stderr: " + self.stderr.strip()[-2000:])
        return f"exit status {self.returncode}\n" + "\n".join(lines)


_FINDING = re.compile(
    r"^(?P<rule>[EWI]\d{4}) (?P<message>.*)\n(?P<file>.+?):(?P<line>\d+):(?P<col>\d+)$",
    re.MULTILINE,
)


def parse(stdout: str) -> list[Finding]:
    return [
        Finding(m["rule"], m["message"], m["file"], int(m["line"]))
        for m in _FINDING.finditer(stdout)
    ]


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    """cfn-lint with `args`, from the repository root."""
    proc = subprocess.run(
        [cfn_lint(), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **(env or {})},
    )
    return Result(proc.returncode, parse(proc.stdout), proc.stdout, proc.stderr)


def lint(*templates: str | Path) -> Result:
    """The documented command on `templates`."""
    return run([*COMMAND[1:], *(str(t) for t in templates)])
