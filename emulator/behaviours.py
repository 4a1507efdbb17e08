"""Behaviours of real AWS that a test switches on for its own cluster, log group or service (tests
share one emulator and run side by side), or globally. Each behaviour is modelled where it
happens (ecs_tasks.py, logs.py, services.py), with the AWS page it comes from; this module only
keeps what is switched on where, and how often each behaviour was hit.

Control API (emulator/README.md, "Behaviours"):
  POST /_taskrun/behaviours {"cluster": C | "logGroup": G | "service": S | none (global),
                             <behaviour>: <settings> | null, ..., "clear": true}
  GET  /_taskrun/behaviours -> {"global": {...}, "clusters": {C: {...}}, "logGroups": {...},
                                "services": {...}, "hits": {"cluster:C": {behaviour: n}, ...}}
A scope's setting wins over the global one; null removes a setting; "clear": true forgets the
scope's settings (or, without a scope, every setting and hit count).
"""

from __future__ import annotations

import collections
from typing import Any, Callable

from protocol import ControlError

SCOPES = {"cluster": "clusters", "logGroup": "logGroups", "service": "services"}


def _number(value: Any, what: str, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ControlError(f"{what} must be a number >= {minimum}")
    return value


def _phase(value: Any, what: str) -> dict:
    """{"describes": N, "seconds": S}: a state lasts N DescribeTasks that include the task (default 1
    when neither is given) and at least S seconds."""
    if not isinstance(value, dict) or not set(value) <= {"describes", "seconds"}:
        raise ControlError(f'{what} must be {{"describes": N, "seconds": S}}')
    out = {}
    if value.get("describes") is not None:
        out["describes"] = int(_number(value["describes"], f"{what}.describes"))
    if value.get("seconds") is not None:
        out["seconds"] = float(_number(value["seconds"], f"{what}.seconds"))
    if not out:
        out["describes"] = 1
    return out


def _quota(value: Any, what: str) -> dict:
    if not isinstance(value, dict) or not value or not set(value) <= {"limit", "times"}:
        raise ControlError(f'{what} must be {{"limit": Q}} or {{"times": N}}')
    return {k: int(_number(v, f"{what}.{k}")) for k, v in value.items()}


def _pages(value: Any, what: str) -> dict:
    if not isinstance(value, dict) or not value or not set(value) <= {"pageLimit", "emptyPages"}:
        raise ControlError(f'{what} must be {{"pageLimit": K, "emptyPages": N}}')
    out = {k: int(_number(v, f"{what}.{k}")) for k, v in value.items()}
    if out.get("pageLimit") == 0:
        raise ControlError(f"{what}.pageLimit must be >= 1")
    return out


def _late(value: Any, what: str) -> dict:
    if not isinstance(value, dict) or "seconds" not in value or not set(value) <= {"seconds", "lines"}:
        raise ControlError(f'{what} must be {{"seconds": S, "lines": N}}')
    return {"seconds": float(_number(value["seconds"], f"{what}.seconds")),
            "lines": int(_number(value.get("lines", 1), f"{what}.lines", 1))}


def _flag(value: Any, what: str) -> bool:
    if not isinstance(value, bool):
        raise ControlError(f"{what} must be true or false")
    return value


# behaviour -> (scope kind, validator)
BEHAVIOURS: dict[str, tuple[str, Callable[[Any, str], Any]]] = {
    "stopping": ("cluster", _phase),
    "deprovisioning": ("cluster", _phase),
    "deleted": ("cluster", _phase),
    "invisibleSeconds": ("cluster", lambda v, w: float(_number(v, w))),
    "provisioningQuota": ("cluster", _quota),
    "logPages": ("logGroup", _pages),
    "lateLines": ("logGroup", _late),
    "shortArn": ("service", _flag),
}


class Behaviours:
    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.settings: dict[tuple[str, str], dict] = {}  # (kind, name) -> {behaviour: settings}; kind "" = global
        self.hits: dict[str, collections.Counter] = {}

    def set(self, body: dict) -> dict:
        scopes = [k for k in SCOPES if body.get(k) is not None]
        if len(scopes) > 1:
            raise ControlError("give at most one of cluster, logGroup, service")
        kind = scopes[0] if scopes else ""
        name = body.get(kind, "") if kind else ""
        if kind and (not isinstance(name, str) or not name):
            raise ControlError(f"{kind} must be a non-empty string")
        if kind in ("cluster", "service"):
            name = name.split("/")[-1]  # an ARN names the same cluster or service
        if body.get("clear"):
            if kind:
                self.settings.pop((kind, name), None)
            else:
                self.clear()
        current = self.settings.setdefault((kind, name), {})
        for key, value in body.items():
            if key in SCOPES or key == "clear":
                continue
            if key not in BEHAVIOURS:
                raise ControlError(f"unknown behaviour {key!r}; known: {sorted(BEHAVIOURS)}")
            owner, validate = BEHAVIOURS[key]
            if kind and kind != owner:
                raise ControlError(f"{key} is set per {owner} (or globally), not per {kind}")
            if value is None:
                current.pop(key, None)
            else:
                current[key] = validate(value, key)
        if not current:
            self.settings.pop((kind, name), None)
        return self.snapshot()

    def get(self, kind: str, name: str, key: str) -> Any:
        """The setting of `key` for that cluster/log group/service, else the global one, else None."""
        scoped = self.settings.get((kind, name))
        if scoped and key in scoped:
            return scoped[key]
        return (self.settings.get(("", "")) or {}).get(key)

    def hit(self, kind: str, name: str, key: str) -> None:
        self.hits.setdefault(f"{kind}:{name}", collections.Counter())[key] += 1

    def snapshot(self) -> dict:
        out: dict[str, Any] = {"global": dict(self.settings.get(("", "")) or {})}
        for kind, plural in SCOPES.items():
            out[plural] = {name: dict(v) for (k, name), v in self.settings.items() if k == kind}
        out["hits"] = {scope: dict(counter) for scope, counter in self.hits.items()}
        return out
