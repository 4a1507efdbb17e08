#!/usr/bin/env python3
"""Checks recorded AWS requests against what AWS accepts (aws_rules.py: the pinned API models plus
the documented limits), for test suites that do not go through the emulator.

    .venv/bin/python emulator/check_requests.py FILE.jsonl [FILE.jsonl ...]

Each line of a file is one request as the SDK serialized it:
    {"target": "AmazonEC2ContainerServiceV20141113.RunTask", "body": {...}}
(target is the X-Amz-Target header: AmazonSSM.PutParameter, Logs_20140328.GetLogEvents, ...).

Prints one line per refused request -- where it is, the operation, the exception AWS would answer
and each offending member with the rule it breaks and its length -- and never a value (request
bodies may hold secrets). Identical lines are checked once. Ends with
    checked N requests (by operation: RunTask 120, ...), V refused
Exit status: 0 when nothing is refused, 1 when something is, 2 when a line cannot be read (the
line number is printed; the rest is still checked).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import aws_rules  # noqa: E402  (after the path set-up above)


def check_file(path: str, counts: collections.Counter, out: list[str]) -> tuple[int, int, int]:
    """(requests, refused, unreadable) of one file; refusal lines are appended to `out`."""
    seen: dict[str, tuple[str, aws_rules.Refusal | None]] = {}  # line text -> (operation, refusal)
    first_line: dict[str, int] = {}
    repeats: collections.Counter = collections.Counter()
    total = refused = unreadable = 0
    ctx = aws_rules.Context()  # recorded requests: no wall-clock rules (PutLogEvents' 24-hour span)
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            text = line.strip()
            if not text:
                continue
            total += 1
            if text in seen:
                operation, refusal = seen[text]
                counts[operation] += 1
                repeats[text] += 1
                refused += refusal is not None
                continue
            try:
                record = json.loads(text)
                target, body = record["target"], record.get("body", {})
                found = aws_rules.service_of_target(target)
                if found is None:
                    raise ValueError(f"unknown target {target!r}")
            except (ValueError, KeyError, TypeError) as e:
                unreadable += 1
                why = str(e) if "unknown target" in str(e) else 'not a {"target", "body"} JSON object'
                out.append(f"{path}:{number}: unreadable ({why})")
                continue
            service, operation = found
            refusal = aws_rules.check(service, operation, body, ctx)
            seen[text] = (operation, refusal)
            first_line[text] = number
            counts[operation] += 1
            refused += refusal is not None
    for text, (operation, refusal) in seen.items():
        if refusal is None:
            continue
        again = f" (and {repeats[text]} identical)" if repeats[text] else ""
        for detail in refusal.safe_lines():
            out.append(f"{path}:{first_line[text]}{again}: {operation}: {refusal.code}: {detail}")
    return total, refused, unreadable


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", help="JSONL files of {\"target\", \"body\"} lines")
    args = parser.parse_args(argv)
    counts: collections.Counter = collections.Counter()
    lines: list[str] = []
    total = refused = unreadable = 0
    for path in args.files:
        t, r, u = check_file(path, counts, lines)
        total, refused, unreadable = total + t, refused + r, unreadable + u
    for line in lines:
        print(line)
    by_op = ", ".join(f"{op} {n}" for op, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))
    print(f"checked {total} requests (by operation: {by_op or 'none'}), {refused} refused"
          + (f", {unreadable} unreadable" if unreadable else ""))
    if unreadable:
        return 2
    return 1 if refused else 0


if __name__ == "__main__":
    sys.exit(main())
