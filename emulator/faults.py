"""Injected faults: throttle rules (an AWS error before or after acting, or a load balancer's HTML
page) and kill rules (signal a process after acting), keyed by API and an optional body filter.
Control endpoints: POST /_taskrun/throttle and /_taskrun/kill (emulator/README.md)."""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from protocol import LB_PHRASES, ControlError, fault_resp, respond


def body_filter(body: dict) -> str:
    value = body.get("bodyContains") or ""
    if not isinstance(value, str):
        raise ControlError("bodyContains must be a string")
    return value


def int_field(body: dict, name: str, default: int) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ControlError(f"{name} must be an integer >= 0")
    return value


def send_kill(spec: dict) -> bool:
    """Signal the process of a kill rule and give it up to waitSeconds to be gone, so the answer
    we send next is not read by it."""
    pid = spec["pid"]
    try:
        os.kill(pid, spec["signal"])
    except (ProcessLookupError, PermissionError) as e:
        logging.getLogger("taskrun").warning("kill rule: cannot signal pid %s: %s", pid, e)
        return False
    deadline = time.monotonic() + spec["waitSeconds"]
    while not process_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    return True


def process_gone(pid: int) -> bool:
    """True when pid no longer runs: absent, or a zombie its parent has not reaped yet."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def consume_rule(rules: dict, key: str, body: str = "") -> dict | None:
    """The throttle/kill rule that applies to this call, if any (its first `skip` calls
    pass). Rules are kept by (api, bodyContains): a rule with bodyContains only applies to
    calls whose raw body holds that text (tests running side by side scope their faults
    to their own cluster that way)."""
    for rule_key in [k for k in rules if k[0] == key and k[1] in body]:
        spec = rules[rule_key]
        if spec["remaining"] <= 0:
            continue
        if spec.get("skip", 0) > 0:
            spec["skip"] -= 1
            return None
        spec["remaining"] -= 1
        if spec["remaining"] <= 0:
            del rules[rule_key]
        return spec
    return None


def answer_fault(start_response: Any, environ: dict, call: dict, fault: dict,
                  json_protocol: bool) -> list[bytes]:
    resp = fault_resp(fault, json_protocol)
    call["throttled"] = True
    call["status"] = resp[0]
    note = "injected fault after acting" if fault["after"] else "injected fault"
    environ["taskrun.note"] = "; ".join(filter(None, [environ.get("taskrun.note"), note]))
    return respond(start_response, resp, LB_PHRASES.get(resp[0]) if fault.get("html") else None)
