"""Scripted outcomes: how a started task ends (task outcomes) and how a service deployment ends
(deployment outcomes). The formats are documented in emulator/README.md ("Outcomes")."""

from __future__ import annotations

from typing import Any

from protocol import ControlError

BUILTIN_DEFAULT_OUTCOME = {"kind": "exit", "afterDescribes": 1}
OUTCOME_KINDS = ("exit", "never_starts", "never_stops")
DEPLOYMENT_KINDS = ("completed", "failed", "stuck")
BUILTIN_DEPLOYMENT_OUTCOME = {"kind": "completed", "afterDescribes": 1}


def normalize_outcome(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ControlError("outcome must be a JSON object")
    kind = raw.get("kind", "exit")
    if kind not in OUTCOME_KINDS:
        raise ControlError(f"outcome.kind must be one of {list(OUTCOME_KINDS)}")
    out = dict(raw)
    out["kind"] = kind
    check_after(out, "outcome")
    containers = out.get("containers") or {}
    if not isinstance(containers, dict) or not all(
        isinstance(v, dict) for v in containers.values()
    ):
        raise ControlError('outcome.containers must map container names to {"exitCode", "reason"}')
    out["containers"] = containers
    logs = out.get("logs")
    if logs is not None:
        if not isinstance(logs, dict) or not all(
            isinstance(v, list) and all(isinstance(line, str) for line in v) for v in logs.values()
        ):
            raise ControlError('outcome.logs must map container names to lists of strings')
    return out


def check_after(out: dict, what: str) -> None:
    for key in ("afterDescribes", "afterSeconds"):
        if out.get(key) is not None:
            value = out[key]
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ControlError(f"{what}.{key} must be a number >= 0")
    if out.get("afterDescribes") is not None:
        out["afterDescribes"] = int(out["afterDescribes"])


def normalize_deployment_outcome(raw: Any) -> dict:
    if not isinstance(raw, dict):
        raise ControlError("outcome must be a JSON object")
    out = dict(raw)
    out["kind"] = out.get("kind", "completed")
    if out["kind"] not in DEPLOYMENT_KINDS:
        raise ControlError(f"outcome.kind must be one of {list(DEPLOYMENT_KINDS)}")
    check_after(out, "outcome")
    failed = out.get("failedTasks")
    if failed is not None and (isinstance(failed, bool) or not isinstance(failed, int) or failed < 0):
        raise ControlError("outcome.failedTasks must be an integer >= 0")
    if out.get("reason") is not None and not isinstance(out["reason"], str):
        raise ControlError("outcome.reason must be a string")
    if out.get("rollback") is not None and not isinstance(out["rollback"], bool):
        raise ControlError("outcome.rollback must be true or false")
    return out


def outcome_due(outcome: dict, describes: int, elapsed: float) -> bool:
    """Whether an outcome's condition is met. Neither afterDescribes nor afterSeconds: after 1
    describe. afterDescribes N: N describes see the old state, describe N+1 the new one."""
    after_d = outcome.get("afterDescribes")
    after_s = outcome.get("afterSeconds")
    if after_d is None and after_s is None:
        after_d = 1
    return (after_d is None or describes > after_d) and (after_s is None or elapsed >= after_s)
