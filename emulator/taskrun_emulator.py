#!/usr/bin/env python3
"""Local AWS emulator for the Org::ECS::TaskRun and Org::ECS::ServiceRestart resource types.

moto 5.2.5's own server app (ECS, SSM, STS, Logs, EC2, ... on one endpoint; the service is
picked from the SigV4 credential scope) wrapped in a WSGI middleware (launcher.py) that takes
over what stock moto cannot model faithfully: the ECS task lifecycle with scripted outcomes,
CloudWatch Logs of awslogs containers, service deployments, fault injection, kill-after-call and
a call log, plus a control API under /_taskrun/.

Usage: python emulator/taskrun_emulator.py --port 0 [--port-file PATH] [--parent-pid PID]
                                          [--log-requests]
Prints exactly one line `READY http://127.0.0.1:<port>` on stdout once it serves. With
--log-requests, stderr gets one line per request naming the API of AWS calls:
`POST / ecs:RunTask 200 12ms`, `POST /_taskrun/throttle 200 0ms`, plus a note for refused,
throttled and faulted calls and kills (`... 400 2ms (refused: InvalidParameterException)`,
`... 503 3ms (injected fault after acting)`).

Documentation: emulator/README.md holds the complete control API (every /_taskrun/ endpoint and
its JSON), the task and deployment outcome formats, the CloudWatch Logs and service behaviours,
what AWS refuses (every request is checked against the pinned API models and the documented
limits, each with its source), the switchable behaviours, the token buckets and the provenance of
the vendored models; its "Modules" table says which module holds what. In short:
  launcher.py   the WSGI app: control API or AWS call; for AWS calls the order of checks
  aws_rules.py  what AWS refuses (aws_model.py, limits_*.py, aws_models/); check_requests.py
  ecs_tasks.py, task_state.py, logs.py, services.py, service_deployments.py   what AWS does
  behaviours.py, buckets.py, faults.py   what tests switch on; control.py, protocol.py, outcomes.py
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import time
from typing import Any

from werkzeug.serving import make_server

from moto.moto_server.werkzeug_app import MotoRequestHandler

from faults import process_gone
from launcher import Launcher


class RequestHandler(MotoRequestHandler):
    """moto's request handler with one readable log line per request: `POST / ecs:RunTask 200 12ms`
    (AWS calls all go to `POST /`, so the line names the API), `POST /_taskrun/throttle 200 1ms`."""

    def make_environ(self) -> dict:
        environ = super().make_environ()
        environ["taskrun.t0"] = time.monotonic()
        return environ

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        environ = getattr(self, "environ", None) or {}
        started = environ.get("taskrun.t0")
        took = f" {(time.monotonic() - started) * 1000:.0f}ms" if started is not None else ""
        api = environ.get("taskrun.api")
        note = environ.get("taskrun.note")
        path = getattr(self, "path", "") or ""
        line = f"{getattr(self, 'command', '-')} {path}{' ' + api if api else ''} {code}{took}{' (' + note + ')' if note else ''}"
        logging.getLogger("werkzeug").info(line.translate(self._control_char_table))


def watch_parent(pid: int) -> None:
    def loop() -> None:
        while True:
            time.sleep(0.5)
            if process_gone(pid):
                os._exit(0)

    threading.Thread(target=loop, name="parent-watch", daemon=True).start()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0 = any free port)")
    parser.add_argument("--port-file", help="write the bound port to this file once ready")
    parser.add_argument("--parent-pid", type=int, help="exit when this process no longer exists")
    parser.add_argument("--log-requests", action="store_true",
                        help="log every HTTP request to stderr (default: only errors)")
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.log_requests else logging.WARNING)

    if args.parent_pid:
        watch_parent(args.parent_pid)

    app = Launcher()
    app.warm_up()
    server = make_server("127.0.0.1", args.port, app, threaded=True, request_handler=RequestHandler)
    port = server.server_port

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    if args.port_file:
        tmp = f"{args.port_file}.tmp{os.getpid()}"
        with open(tmp, "w") as f:
            f.write(f"{port}\n")
        os.replace(tmp, args.port_file)
    sys.stdout.write(f"READY http://127.0.0.1:{port}\n")
    sys.stdout.flush()
    # Nothing else goes to stdout: a caller may read just the READY line and never drain the pipe
    # (or close it). Stray prints (moto has a few) go to stderr from here on.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    try:
        server.serve_forever()
    except SystemExit:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
