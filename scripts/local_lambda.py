#!/usr/bin/env python3
"""A local Lambda service for one function, standard library only.

It serves, on one loopback port:

- the Lambda Invoke API, as boto3 / `cfn test --endpoint` call it:
  POST /2015-03-31/functions/<name>/invocations
  -> 200 with the handler's JSON; on a function error also the header
     X-Amz-Function-Error: Unhandled, as real Lambda answers (not HTTP 500);
- the Lambda Runtime API for the handler binary it runs itself
  (GET  /2018-06-01/runtime/invocation/next,
   POST /2018-06-01/runtime/invocation/<id>/response | /error,
   POST /2018-06-01/runtime/init/error).

The binary (--binary, e.g. target/debug/bootstrap) is started with
AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port> and the other variables a Lambda
sandbox sets; the rest of this process's environment passes through (e.g.
AWS_ENDPOINT_URL, AWS_REGION). Like one Lambda sandbox, it handles one
invocation at a time: invocations are queued and served in order. When the
binary dies it is started again for the next invocation; an invocation it was
running fails with Runtime.ExitError. An invocation running longer than
--timeout seconds fails with Sandbox.Timedout and the binary is restarted.

For tests that kill the handler mid-invocation (the emulator's /_taskrun/kill):
GET /_local/handler-pid -> {"pid": <pid of the running handler process, or null>}.
A handler killed by a signal fails its invocation with Runtime.ExitError
("Runtime exited with error: signal: killed"), and the next invocation starts
a fresh process.

Prints `READY http://127.0.0.1:<port>` (and writes the port to --port-file)
once the binary has asked for its first invocation. Stops the binary and exits
on SIGTERM / SIGINT, or when --parent-pid is gone.

    python3 scripts/local_lambda.py --binary target/debug/bootstrap --port 0 \
        --port-file .tmp/lambda.port --parent-pid $$
"""
import argparse
import datetime
import json
import os
import re
import signal
import sys
import threading
import time

from cfnkit import REGION
from cfnkit.runtime_api import Function, QuietServer, RuntimeAPIHandler, Sandbox, function_arn

INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"[local_lambda {stamp}] {message}", file=sys.stderr, flush=True)


class Handler(RuntimeAPIHandler):
    """The Runtime API, and beside it the Lambda Invoke API and the handler's pid."""

    server_version = "local_lambda"
    verbose = False  # log every HTTP request
    timeout: float  # seconds one invocation may take
    init_timeout: float  # seconds the binary has to ask for an invocation

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        if self.verbose:
            log(format % args)

    def other_get(self, path):
        if path == "/_local/handler-pid":
            self.send(200, json.dumps({"pid": self.sandbox.handler_pid()}).encode())
            return True
        if path in ("/", "/health", "/2015-03-31/health"):
            self.send(200, b'{"status":"ok"}')
            return True
        return False

    def other_post(self, path, body):
        match = INVOKE_PATH.match(path)
        if not match:
            return False
        self._invoke(match.group(1), body)
        return True

    def _invoke(self, name, body):
        function = self.sandbox.function
        # accept the name, name:qualifier and the function ARN
        base = name.split(":function:")[-1].split(":", 1)[0]
        if base != function.name:
            self.aws_error(
                404,
                "ResourceNotFoundException",
                f"Function not found: {function_arn(function.region, function.account, base)}",
            )
            return
        invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        common = {"X-Amz-Executed-Version": "$LATEST"}
        if invocation_type == "DryRun":
            self.send(204, b"", common)
            return
        if invocation_type == "Event":
            threading.Thread(target=self.invoke_sandbox, args=(body,), daemon=True).start()
            self.send(202, b"", common)
            return
        if invocation_type != "RequestResponse":
            self.aws_error(
                400,
                "InvalidParameterValueException",
                f"unknown X-Amz-Invocation-Type {invocation_type}",
            )
            return
        inv = self.invoke_sandbox(body or b"{}")
        headers = dict(common)
        if inv.function_error:
            headers["X-Amz-Function-Error"] = inv.function_error
        self.send(200, inv.body, headers)

    def invoke_sandbox(self, payload):
        return self.sandbox.invoke(payload, self.timeout, self.init_timeout)


def watch_parent(pid, on_gone):
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            on_gone()
            return
        except PermissionError:
            pass
        time.sleep(1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True, help="the handler binary to run")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--port-file", help="write the port here once ready")
    parser.add_argument("--parent-pid", type=int, help="exit when this process is gone")
    parser.add_argument("--function-name", default="TaskRun")
    parser.add_argument("--memory", type=int, default=256, help="MiB, as reported to the handler")
    parser.add_argument(
        "--timeout", type=float, default=900.0, help="seconds one invocation may take"
    )
    parser.add_argument(
        "--init-timeout",
        type=float,
        default=30.0,
        help="seconds the binary has to ask for its first invocation",
    )
    parser.add_argument("--verbose", action="store_true", help="log every HTTP request")
    args = parser.parse_args()

    if not (os.path.isfile(args.binary) and os.access(args.binary, os.X_OK)):
        parser.error(f"--binary {args.binary}: not an executable file")

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or REGION
    function = Function(
        args.binary,
        name=args.function_name,
        region=region,
        memory_mb=args.memory,
        deadline_seconds=args.timeout,
    )
    sandbox = Sandbox(function, log=log)
    handler = Handler.serving(
        sandbox, timeout=args.timeout, init_timeout=args.init_timeout, verbose=args.verbose
    )
    server = QuietServer((args.host, args.port), handler)
    sandbox.port = server.server_address[1]
    url = f"http://{args.host}:{sandbox.port}"

    stopped = threading.Event()

    def shutdown(*_):
        if stopped.is_set():
            return
        stopped.set()
        sandbox.stop()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    if args.parent_pid:
        threading.Thread(
            target=watch_parent, args=(args.parent_pid, shutdown), daemon=True
        ).start()

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2})
    serving.start()
    try:
        if not sandbox.ensure_running(args.init_timeout):
            detail = f": {sandbox.init_error}" if sandbox.init_error else ""
            if sandbox.process is None:
                log(f"the handler exited before asking for an invocation{detail}")
            else:
                log(f"the handler did not ask for an invocation within {args.init_timeout}s")
            shutdown()
            serving.join()
            return 1
        if args.port_file:
            tmp = f"{args.port_file}.tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(f"{sandbox.port}\n")
            os.replace(tmp, args.port_file)
        print(f"READY {url}", flush=True)
        log(f"function {args.function_name} at {url} (binary {args.binary})")
        while serving.is_alive():
            serving.join(0.5)
    finally:
        shutdown()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
