"""Tests of check_requests.py, the command-line check of recorded requests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from testkit import HERE

SCRIPT = os.path.join(HERE, "check_requests.py")
ECS = "AmazonEC2ContainerServiceV20141113"
SECRET = "hunter2-do-not-print"


def check(tmp_path, records, raw_lines=()):
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + "".join(line + "\n" for line in raw_lines))
    done = subprocess.run([sys.executable, SCRIPT, str(path)], capture_output=True, text=True, timeout=60)
    return done.returncode, done.stdout.splitlines()


def test_all_accepted(tmp_path):
    records = [{"target": f"{ECS}.DescribeTasks", "body": {"cluster": "c", "tasks": ["t"]}}] * 3 + [
        {"target": "AmazonSSM.PutParameter", "body": {"Name": "/org-ecs-taskrun/runs/a", "Value": SECRET,
                                                     "Type": "SecureString", "Tier": "Intelligent-Tiering"}},
        {"target": "Logs_20140328.GetLogEvents", "body": {"logGroupName": "/g", "logStreamName": "s", "limit": 10}},
    ]
    code, out = check(tmp_path, records)
    assert code == 0, out
    assert out == ["checked 5 requests (by operation: DescribeTasks 3, GetLogEvents 1, PutParameter 1), 0 refused"]


def test_refusals_name_members_never_values(tmp_path):
    records = [
        {"target": f"{ECS}.RunTask", "body": {"cluster": "c", "taskDefinition": "f",
                                              "tags": [{"key": "k", "value": f"{SECRET}(x)"}]}},
        {"target": f"{ECS}.RunTask", "body": {"cluster": "c", "taskDefinition": "f",
                                              "tags": [{"key": "k", "value": f"{SECRET}(x)"}]}},
        {"target": "AmazonSSM.PutParameter", "body": {"Name": "/a", "Value": SECRET * 1000, "Type": "SecureString"}},
        {"target": f"{ECS}.ListTasks", "body": {"cluster": "c", "startedBy": SECRET, "family": "f"}},
        {"target": f"{ECS}.DescribeTasks", "body": {"cluster": f"{SECRET} x", "tasks": ["t"]}},
    ]
    code, out = check(tmp_path, records)
    assert code == 1
    assert not any(SECRET in line for line in out), out
    text = "\n".join(out)
    assert ":1 (and 1 identical): RunTask: InvalidParameterException: tags.1.member.value:" in text
    assert "PutParameter: ValidationException: Value: at most 4096 bytes for tier Standard (length 20000)" in text
    assert "ListTasks: InvalidParameterException: family: not allowed together with startedBy" in text
    assert "DescribeTasks: InvalidParameterException: cluster:" in text
    assert out[-1] == "checked 5 requests (by operation: RunTask 2, DescribeTasks 1, ListTasks 1, PutParameter 1), 5 refused"


def test_unreadable_lines(tmp_path):
    code, out = check(tmp_path, [{"target": f"{ECS}.ListClusters", "body": {}}],
                      ["not json", json.dumps({"target": "AmazonS3.PutObject", "body": {}})])
    assert code == 2
    assert any(":2: unreadable" in line for line in out) and any("unknown target" in line for line in out)
    assert out[-1].endswith("0 refused, 2 unreadable")


def test_large_file_is_fast(tmp_path):
    """~200,000 lines, mostly repeated bodies, well under a minute."""
    path = tmp_path / "big.jsonl"
    line = json.dumps({"target": f"{ECS}.DescribeTasks", "body": {"cluster": "c", "tasks": ["t"], "include": ["TAGS"]}})
    unique = [json.dumps({"target": f"{ECS}.RunTask", "body": {"cluster": "c", "taskDefinition": "f", "count": 1 + i % 10,
                                                               "clientToken": f"{i:032x}"}}) for i in range(20000)]
    path.write_text((line + "\n") * 180000 + "\n".join(unique) + "\n")
    started = time.monotonic()
    done = subprocess.run([sys.executable, SCRIPT, str(path)], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout[-2000:]
    assert done.stdout.splitlines()[-1] == "checked 200000 requests (by operation: DescribeTasks 180000, RunTask 20000), 0 refused"
    assert took < 20, took
