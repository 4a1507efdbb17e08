"""Tests of the per-account token buckets (buckets.py): off by default; on, a burst passes and the
rest is throttled until the bucket refills."""

from __future__ import annotations

import time
import urllib.error

import pytest
from botocore.exceptions import ClientError

from testkit import client, ctl

ARN = "arn:aws:ecs:us-east-1:123456789012:task/apps/0123456789abcdef0123456789abcdef"


def burst(ecs, n):
    allowed = throttled = 0
    for _ in range(n):
        try:
            ecs.describe_tasks(cluster="apps", tasks=[ARN])
            allowed += 1
        except ClientError as e:
            assert e.response["Error"]["Code"] == "ThrottlingException"
            assert e.response["Error"]["Message"] == "Rate exceeded"
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            throttled += 1
    return allowed, throttled


def test_off_by_default(ecs, url):
    assert ctl(url, "buckets")["enabled"] is False
    assert burst(ecs, 120) == (120, 0)


def test_describe_tasks_burst_then_refill(ecs, url):
    snap = ctl(url, "buckets", {"enabled": True})
    assert (snap["enabled"], snap["scale"], snap["background"]) == (True, 1.0, 0.0)
    try:
        started = time.monotonic()
        allowed, throttled = burst(ecs, 150)
        took = time.monotonic() - started
        # 100 at once, plus what 20 per second refilled while the burst lasted
        assert 100 <= allowed <= 100 + 20 * took + 1, (allowed, took)
        assert allowed + throttled == 150 and throttled >= 30
        state = ctl(url, "buckets")["buckets"]["123456789012/us-east-1/ecs-cluster-read"]
        assert (state["burst"], state["refillPerSecond"]) == (100, 20)
        assert (state["allowed"], state["throttled"]) == (allowed, throttled) and state["level"] < 2
        calls = [c for c in ctl(url, "calls") if c["api"] == "DescribeTasks" and c["throttled"]]
        assert len(calls) == throttled and all(c["bucket"] == "ecs-cluster-read" and not c["acted"] for c in calls)
        rested = time.monotonic()
        time.sleep(0.5)  # 10 tokens back, and more while the next calls go on
        allowed, _ = burst(ecs, 30)
        assert 9 <= allowed <= 20 * (time.monotonic() - rested) + 1, allowed
        # other buckets are separate: ListClusters has none, RunTask draws on cluster-modify
        ecs.list_clusters()
    finally:
        ctl(url, "buckets", {"enabled": False})


def test_scale_background_and_ssm(url):
    ctl(url, "buckets", {"enabled": True, "scale": 0.5, "background": 0.5})
    try:
        ssm = client(url, "ssm")
        results = []
        for i in range(4):
            try:
                ssm.put_parameter(Name=f"/b/p{i}", Value="v", Type="String")
                results.append("ok")
            except ClientError as e:
                results.append(e.response["Error"]["Code"])
        # PutParameter: 3 per second (reported by AWS Support) at half scale: a burst of 1.5
        assert results == ["ok", "ThrottlingException", "ThrottlingException", "ThrottlingException"]
        state = ctl(url, "buckets")["buckets"]["123456789012/us-east-1/ssm-put-parameter"]
        assert (state["burst"], state["refillPerSecond"]) == (1.5, 0.75)
        with pytest.raises(ClientError):
            ssm.get_parameter(Name="/b/p1")  # not written: throttled before acting
    finally:
        ctl(url, "buckets", {"enabled": False, "scale": 1.0, "background": 0.0})
    for bad in ({"enabled": "yes"}, {"scale": 0}, {"background": 1}):
        with pytest.raises(urllib.error.HTTPError) as e:
            ctl(url, "buckets", bad)
        assert e.value.code == 400
