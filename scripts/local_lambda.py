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
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ACCOUNT_ID = "123456789012"
INVOKE_PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations/?$")
NEXT_PATH = "/2018-06-01/runtime/invocation/next"
RESULT_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"


def log(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S.%f")[:-3]
    print(f"[local_lambda {stamp}] {message}", file=sys.stderr, flush=True)


class Invocation:
    def __init__(self, payload, timeout):
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.timeout = timeout
        self.deadline_ms = 0
        self.done = threading.Event()
        self.body = b""
        self.function_error = None  # None, or "Unhandled"

    def finish(self, body, function_error=None):
        if self.done.is_set():
            return False
        self.body = body
        self.function_error = function_error
        self.done.set()
        return True


def exit_description(code):
    """How Lambda words a runtime's end: "exit status 2", or "signal: killed" for SIGKILL."""
    if code is not None and code < 0:
        names = {
            signal.SIGKILL: "killed",
            signal.SIGTERM: "terminated",
            signal.SIGSEGV: "segmentation fault",
            signal.SIGABRT: "aborted",
        }
        try:
            sig = signal.Signals(-code)
        except ValueError:
            return f"signal: {-code}"
        return f"signal: {names.get(sig, sig.name)}"
    return f"exit status {code}"


def error_body(error_type, message):
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


class Sandbox:
    """The one handler process and the one invocation it may be running."""

    def __init__(self, args, region):
        self.args = args
        self.region = region
        self.port = None
        self.lock = threading.Condition()
        self.invoke_lock = threading.Lock()  # serialises invocations
        self.process = None
        self.generation = 0  # bumps at each start, so a dead process is told apart
        self.pending = None  # Invocation waiting to be picked up by /next
        self.current = None  # Invocation the runtime is working on
        self.polled = False  # the running process has asked for an invocation
        self.init_error = None
        self.stopping = False

    # -- process -----------------------------------------------------------

    def env(self):
        env = dict(os.environ)
        name = self.args.function_name
        now = datetime.datetime.now(datetime.timezone.utc)
        env.update(
            {
                "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
                "AWS_LAMBDA_FUNCTION_NAME": name,
                "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.args.memory),
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": (
                    f"{now:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
                ),
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "_HANDLER": os.path.basename(self.args.binary),
                "LAMBDA_TASK_ROOT": os.path.dirname(os.path.abspath(self.args.binary)),
            }
        )
        env.setdefault("AWS_REGION", self.region)
        env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
        env.setdefault("TZ", ":UTC")
        # one sandbox runs one invocation at a time: no concurrent runtime loops
        env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
        return env

    def start(self):
        """Starts the binary (caller holds self.lock)."""
        self.generation += 1
        self.polled = False
        self.init_error = None
        log(f"starting {self.args.binary} (start #{self.generation})")
        self.process = subprocess.Popen(  # noqa: S603 - our own binary
            [os.path.abspath(self.args.binary)],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=sys.stderr,  # the handler's logs go to our stderr
            stderr=sys.stderr,
        )
        threading.Thread(
            target=self._watch, args=(self.process, self.generation), daemon=True
        ).start()

    def _watch(self, process, generation):
        code = process.wait()
        with self.lock:
            if generation != self.generation:
                return
            self.process = None
            self.polled = False
            if not self.stopping:
                log(f"handler exited: {exit_description(code)}")
            inv = self.current or self.pending
            self.current = None
            self.pending = None
            if inv is not None:
                message = (
                    f"RequestId: {inv.request_id} Error: Runtime exited with error: "
                    f"{exit_description(code)}"
                )
                if self.init_error:
                    message += f" ({self.init_error})"
                inv.finish(error_body("Runtime.ExitError", message), "Unhandled")
            self.lock.notify_all()

    def kill(self):
        """Stops the binary (caller holds self.lock)."""
        process = self.process
        if process is None:
            return
        self.generation += 1  # the watcher of that process no longer counts
        self.process = None
        self.polled = False
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def ensure_running(self, wait_seconds):
        """Starts the binary if needed and waits until it polls /next."""
        with self.lock:
            if self.process is None or self.process.poll() is not None:
                self.start()
            deadline = time.monotonic() + wait_seconds
            while not self.polled and self.process is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            return self.polled

    def handler_pid(self):
        with self.lock:
            process = self.process
            if process is None or process.poll() is not None:
                return None
            return process.pid

    def stop(self):
        with self.lock:
            self.stopping = True
            self.kill()
            self.lock.notify_all()

    # -- invoke ------------------------------------------------------------

    def invoke(self, payload):
        with self.invoke_lock:
            inv = Invocation(payload, self.args.timeout)
            started = self.ensure_running(self.args.init_timeout)
            with self.lock:
                if not started:
                    if self.process is None:
                        message = "Runtime exited before asking for an invocation"
                        if self.init_error:
                            message += f": {self.init_error}"
                        return error_body("Runtime.ExitError", message), "Unhandled"
                    # alive but slow to start: queue anyway, the timeout applies
                inv.deadline_ms = int((time.time() + inv.timeout) * 1000)
                self.pending = inv
                self.lock.notify_all()
            if not inv.done.wait(inv.timeout):
                with self.lock:
                    if inv.finish(
                        error_body(
                            "Sandbox.Timedout",
                            f"RequestId: {inv.request_id} Error: Task timed out after "
                            f"{inv.timeout:.2f} seconds",
                        ),
                        "Unhandled",
                    ):
                        log(f"invocation {inv.request_id} timed out; restarting handler")
                        self.pending = None
                        self.current = None
                        self.kill()
            return inv.body, inv.function_error

    # -- runtime API -------------------------------------------------------

    def next_invocation(self):
        """Blocks until there is an invocation for the runtime (or we stop)."""
        with self.lock:
            generation = self.generation
            self.polled = True
            self.lock.notify_all()
            while (
                self.pending is None
                and not self.stopping
                and generation == self.generation
            ):
                self.lock.wait(1.0)
            if self.stopping or generation != self.generation:
                return None  # a poll left over from a process that is gone
            inv, self.pending = self.pending, None
            self.current = inv
            return inv

    def requeue(self, inv):
        """The runtime's connection broke before it got the invocation."""
        with self.lock:
            if self.current is inv and not inv.done.is_set():
                self.current = None
                self.pending = inv
                self.lock.notify_all()

    def complete(self, request_id, body, function_error):
        with self.lock:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                return False
            self.current = None
            inv.finish(body, function_error)
            return True

    def record_init_error(self, body):
        with self.lock:
            try:
                detail = json.loads(body or b"{}")
                text = f"{detail.get('errorType', '')}: {detail.get('errorMessage', '')}"
            except ValueError:
                text = body.decode("utf-8", "replace")
            self.init_error = text.strip(": ")
            log(f"init error: {self.init_error}")
            inv = self.current or self.pending
            if inv is not None:
                self.current = None
                self.pending = None
                inv.finish(body or error_body("Runtime.InitError", "init error"), "Unhandled")


def make_handler(sandbox, function_name):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "local_lambda"

        def log_message(self, format, *args):  # noqa: A002 - stdlib signature
            if sandbox.args.verbose:
                log(format % args)

        def _body(self):
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                chunks = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                return b"".join(chunks)
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _send(self, status, body=b"", headers=None, content_type="application/json"):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if body:
                self.wfile.write(body)

        def _aws_error(self, status, error_type, message):
            body = json.dumps({"Type": "User", "message": message}).encode()
            self._send(status, body, {"x-amzn-ErrorType": error_type})

        def do_GET(self):  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            if path == NEXT_PATH:
                inv = sandbox.next_invocation()
                if inv is None:
                    self._send(500, error_body("ServiceShutdown", "shutting down"))
                    return
                arn = (
                    f"arn:aws:lambda:{sandbox.region}:{ACCOUNT_ID}:function:"
                    f"{function_name}"
                )
                try:
                    self._send(
                        200,
                        inv.payload,
                        {
                            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
                            "Lambda-Runtime-Invoked-Function-Arn": arn,
                            "Lambda-Runtime-Trace-Id": (
                                f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
                                "Parent=0000000000000000;Sampled=0"
                            ),
                        },
                    )
                except OSError:
                    sandbox.requeue(inv)
                    raise
                return
            if path == "/_local/handler-pid":
                self._send(200, json.dumps({"pid": sandbox.handler_pid()}).encode())
                return
            if path in ("/", "/health", "/2015-03-31/health"):
                self._send(200, b'{"status":"ok"}')
                return
            self._aws_error(404, "ResourceNotFoundException", f"no route for GET {path}")

        def do_POST(self):  # noqa: N802 - stdlib name
            path = self.path.split("?", 1)[0]
            body = self._body()
            match = INVOKE_PATH.match(path)
            if match:
                self._invoke(match.group(1), body)
                return
            match = RESULT_PATH.match(path)
            if match:
                request_id, kind = match.groups()
                if kind == "response":
                    ok = sandbox.complete(request_id, body, None)
                else:
                    if not body:
                        error_type = self.headers.get(
                            "Lambda-Runtime-Function-Error-Type", "Unhandled"
                        )
                        body = error_body(error_type, "handler error")
                    ok = sandbox.complete(request_id, body, "Unhandled")
                if ok:
                    self._send(202, b'{"status":"OK"}')
                else:
                    self._send(
                        400,
                        error_body("InvalidRequestID", f"unknown request {request_id}"),
                    )
                return
            if path == INIT_ERROR_PATH:
                sandbox.record_init_error(body)
                self._send(202, b'{"status":"OK"}')
                return
            self._aws_error(404, "ResourceNotFoundException", f"no route for POST {path}")

        def _invoke(self, name, body):
            # accept the name, name:qualifier and the function ARN
            base = name.split(":function:")[-1].split(":", 1)[0]
            if base != function_name:
                self._aws_error(
                    404,
                    "ResourceNotFoundException",
                    f"Function not found: arn:aws:lambda:{sandbox.region}:{ACCOUNT_ID}"
                    f":function:{base}",
                )
                return
            invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            common = {"X-Amz-Executed-Version": "$LATEST"}
            if invocation_type == "DryRun":
                self._send(204, b"", common)
                return
            if invocation_type == "Event":
                threading.Thread(target=sandbox.invoke, args=(body,), daemon=True).start()
                self._send(202, b"", common)
                return
            if invocation_type != "RequestResponse":
                self._aws_error(
                    400,
                    "InvalidParameterValueException",
                    f"unknown X-Amz-Invocation-Type {invocation_type}",
                )
                return
            result, function_error = sandbox.invoke(body or b"{}")
            headers = dict(common)
            if function_error:
                headers["X-Amz-Function-Error"] = function_error
            self._send(200, result, headers)

    return Handler


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return  # a runtime or client that went away; nothing to report
        super().handle_error(request, client_address)


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

    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    sandbox = Sandbox(args, region)
    server = Server((args.host, args.port), make_handler(sandbox, args.function_name))
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
