#!/usr/bin/env python3
"""Regenerates the vendored AWS API models in this directory from the pinned botocore.

The emulator checks every request against these files (aws_rules.py), never against whatever
botocore happens to be installed, so a botocore upgrade cannot change what the emulator accepts
unnoticed. To move to a newer model: change the botocore pin in emulator/requirements.txt, install
it (bash scripts/venv.sh), run this script, review the diff of the JSON files, run the tests.

    .venv/bin/python emulator/aws_models/regenerate.py [--check]

Each <service>-<api version>.json is botocore's data/<service>/<version>/service-2.json.gz with
every "documentation" (and "documentationUrl") string removed and keys sorted; SOURCE.md records
the botocore version, each original file's path inside botocore and the sha256 of the original
.json.gz and of its uncompressed JSON. --check regenerates in memory and exits 1 when a file here
differs (or botocore is not the pinned version).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(HERE, "..", "requirements.txt")
# The services and API versions the project calls (and its tests use to set up).
MODELS = [("ecs", "2014-11-13"), ("events", "2015-10-07"), ("logs", "2014-03-28"), ("ssm", "2014-11-06")]
DROPPED_KEYS = {"documentation", "documentationUrl"}


def pinned_botocore() -> str:
    with open(REQUIREMENTS) as f:
        m = re.search(r"^botocore==(\S+)", f.read(), re.M)
    if not m:
        sys.exit(f"no botocore== pin in {REQUIREMENTS}")
    return m.group(1)


def strip(node):
    if isinstance(node, dict):
        return {k: strip(v) for k, v in node.items() if k not in DROPPED_KEYS}
    if isinstance(node, list):
        return [strip(v) for v in node]
    return node


def render(model: dict) -> str:
    # one shape/operation per line: small diffs when a model changes, still compact
    lines = ["{"]
    sections = sorted(model)
    for i, section in enumerate(sections):
        value = model[section]
        comma = "," if i < len(sections) - 1 else ""
        if isinstance(value, dict) and section in ("operations", "shapes"):
            lines.append(f"  {json.dumps(section)}: {{")
            names = sorted(value)
            for j, name in enumerate(names):
                sep = "," if j < len(names) - 1 else ""
                lines.append(f"    {json.dumps(name)}: {json.dumps(value[name], sort_keys=True)}{sep}")
            lines.append("  }" + comma)
        else:
            lines.append(f"  {json.dumps(section)}: {json.dumps(value, sort_keys=True)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def build() -> dict[str, str]:
    import botocore

    version = pinned_botocore()
    if botocore.__version__ != version:
        sys.exit(f"botocore {botocore.__version__} is installed, the pin is {version}: run bash scripts/venv.sh")
    data = os.path.join(os.path.dirname(botocore.__file__), "data")
    files: dict[str, str] = {}
    rows = []
    for service, api_version in MODELS:
        rel = f"botocore/data/{service}/{api_version}/service-2.json.gz"
        with open(os.path.join(data, service, api_version, "service-2.json.gz"), "rb") as f:
            packed = f.read()
        raw = gzip.decompress(packed)
        model = strip(json.loads(raw))
        name = f"{service}-{api_version}.json"
        files[name] = render(model)
        rows.append(f"| `{name}` | `{rel}` | `{hashlib.sha256(packed).hexdigest()}` | "
                    f"`{hashlib.sha256(raw).hexdigest()}` |")
    files["SOURCE.md"] = "\n".join([
        "# Vendored AWS API models",
        "",
        f"From botocore {version} (the pin in `emulator/requirements.txt`), written by `regenerate.py`:",
        "each file is the original `service-2.json.gz` with every `documentation` and `documentationUrl`",
        "string removed and keys sorted (one operation or shape per line). The emulator's request checks",
        "(`emulator/aws_rules.py`) read these files, not the installed botocore.",
        "",
        "| file | original (inside the botocore wheel) | sha256 of the original .json.gz | sha256 of its JSON |",
        "| --- | --- | --- | --- |",
        *rows,
        "",
        "Regenerate (after changing the pin and `bash scripts/venv.sh`): "
        "`.venv/bin/python emulator/aws_models/regenerate.py`; verify: `... regenerate.py --check`.",
        "",
    ])
    return files


def main(argv: list[str]) -> int:
    files = build()
    if "--check" in argv:
        stale = []
        for name, text in files.items():
            path = os.path.join(HERE, name)
            if not os.path.exists(path) or open(path).read() != text:
                stale.append(name)
        if stale:
            print("out of date: " + ", ".join(stale))
            return 1
        print(f"{len(files)} files up to date")
        return 0
    for name, text in files.items():
        with open(os.path.join(HERE, name), "w") as f:
            f.write(text)
        print(f"wrote {name} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
