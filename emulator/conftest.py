"""Fixtures of the emulator's tests: one emulator process for the whole session (started the way
the project's tests start it), reset before each test that asks for `url`."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

import pytest

from testkit import FAMILY, LAUNCHER, client, ctl


@pytest.fixture(scope="session")
def emulator_server():
    """The emulator process, shared by the session: {"url", "log"} (log: its stderr file)."""
    log = tempfile.NamedTemporaryFile(prefix="taskrun-emulator-", suffix=".log", delete=False)
    port_file = log.name + ".port"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    proc = subprocess.Popen(
        [sys.executable, LAUNCHER, "--port", "0", "--port-file", port_file, "--parent-pid", str(os.getpid()),
         "--log-requests"],
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        env=env,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:"), f"bad ready line {line!r}; log: {open(log.name).read()[-2000:]}"
        url = line.split()[1]
        with open(port_file) as f:
            assert url.endswith(":" + f.read().strip())
        yield {"url": url, "log": log.name}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        for path in (log.name, port_file):
            try:
                os.unlink(path)
            except OSError:
                pass


@pytest.fixture(scope="session")
def emulator(emulator_server):
    return emulator_server["url"]


@pytest.fixture
def url(emulator):
    ctl(emulator, "reset", {})
    return emulator


@pytest.fixture
def ecs(url):
    c = client(url, "ecs")
    c.create_cluster(clusterName="apps")
    c.register_task_definition(
        family=FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[
            {"name": "app", "image": "example/app:1", "essential": True, "memory": 256},
            {"name": "log-router", "image": "example/fluentbit:2", "essential": False, "memory": 64},
        ],
    )
    return c
