"""Lambda's side of a handler binary: the Runtime API it polls and the sandbox it runs in.

A `provided` runtime binary asks AWS_LAMBDA_RUNTIME_API for work:

    GET  /2018-06-01/runtime/invocation/next          -> an event, with its request id and
                                                          deadline in Lambda-Runtime-* headers
    POST /2018-06-01/runtime/invocation/<id>/response  the answer
    POST /2018-06-01/runtime/invocation/<id>/error     a function error
    POST /2018-06-01/runtime/init/error                it could not start

`Sandbox` runs one binary the way one Lambda sandbox does (one invocation at a time, a fresh
process after the last one died, Runtime.ExitError and Sandbox.Timedout as Lambda words them)
and `RuntimeAPIHandler` serves its Runtime API on a `QuietServer` (threads). The constants and
helpers are also for servers of other shapes (scripts/bench_many.py serves hundreds of
sandboxes on one asyncio loop).

    sandbox = Sandbox(Function("target/debug/bootstrap", name="TaskRun"))
    server = QuietServer(("127.0.0.1", 0), RuntimeAPIHandler.serving(sandbox))
    sandbox.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    invocation = sandbox.invoke(b'{"action": "LIST"}', timeout=60)
"""
from __future__ import annotations

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
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any, Callable, Mapping, Optional

from cfnkit import ACCOUNT_ID, REGION

NEXT_PATH = "/2018-06-01/runtime/invocation/next"
RESULT_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"

now = time.perf_counter


def function_arn(region: str, account: str, function_name: str) -> str:
    return f"arn:aws:lambda:{region}:{account}:function:{function_name}"


def invocation_headers(request_id: str, deadline_ms: int, arn: str) -> dict:
    """The Lambda-Runtime-* headers of an event handed over by GET /next."""
    return {
        "Lambda-Runtime-Aws-Request-Id": request_id,
        "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
        "Lambda-Runtime-Invoked-Function-Arn": arn,
        "Lambda-Runtime-Trace-Id": (
            f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};"
            "Parent=0000000000000000;Sampled=0"
        ),
    }


def error_body(error_type: str, message: str) -> bytes:
    return json.dumps({"errorType": error_type, "errorMessage": message}).encode()


def exit_description(code: Optional[int]) -> str:
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


def lambda_env(
    base: Mapping[str, str],
    binary: str,
    runtime_port: int,
    function_name: str,
    *,
    region: str,
    memory_mb: int = 256,
    handler: Optional[str] = None,
) -> dict:
    """`base` with the variables a Lambda sandbox sets for its runtime process (the region,
    TZ and AWS_DEFAULT_REGION only where `base` has none)."""
    env = dict(base)
    stamp = datetime.datetime.now(datetime.timezone.utc)
    env.update(
        {
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{runtime_port}",
            "AWS_LAMBDA_FUNCTION_NAME": function_name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{function_name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{stamp:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "_HANDLER": handler or os.path.basename(binary),
            "LAMBDA_TASK_ROOT": os.path.dirname(os.path.abspath(binary)),
        }
    )
    env.setdefault("AWS_REGION", region)
    env.setdefault("AWS_DEFAULT_REGION", env["AWS_REGION"])
    env.setdefault("TZ", ":UTC")
    # one sandbox runs one invocation at a time: no concurrent runtime loops
    env.pop("AWS_LAMBDA_MAX_CONCURRENCY", None)
    return env


def answer_of(body: bytes) -> dict:
    """A handler's answer as a JSON object; a body that is none is told as an error."""
    try:
        answer = json.loads(body or b"null")
    except ValueError:
        return {"errorType": "InvalidJSON", "errorMessage": body[:200].decode("utf-8", "replace")}
    if not isinstance(answer, dict):
        return {"errorType": "NotAnObject", "errorMessage": str(answer)[:200]}
    return answer


def stop_process(process: subprocess.Popen, grace_seconds: float = 3.0) -> None:
    """SIGTERM, then SIGKILL if it is still there after `grace_seconds`; reaps it."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=grace_seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Invocation:
    """One event, from its queueing to its answer (times from `now()`)."""

    def __init__(self, payload: bytes) -> None:
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.deadline_ms = 0  # set when queued
        self.done = threading.Event()
        self.body = b""
        self.function_error: Optional[str] = None  # None, or "Unhandled"
        self.timed_out = False
        self.t_queued: Optional[float] = None
        self.t_sent: Optional[float] = None
        self.t_answered: Optional[float] = None

    def finish(self, body: bytes, function_error: Optional[str] = None) -> bool:
        if self.done.is_set():
            return False
        self.body = body
        self.function_error = function_error
        self.t_answered = now()
        self.done.set()
        return True

    def answer(self) -> dict:
        return answer_of(self.body)


@dataclass(frozen=True)
class Function:
    """What Lambda knows of the function a sandbox runs."""

    binary: str
    name: str = "TaskRun"
    region: str = REGION
    account: str = ACCOUNT_ID
    memory_mb: int = 256
    handler: Optional[str] = None  # _HANDLER; the binary's name when None
    deadline_seconds: float = 900.0  # Lambda-Runtime-Deadline-Ms: this after the queueing

    @property
    def arn(self) -> str:
        return function_arn(self.region, self.account, self.name)


class Sandbox:
    """The one handler process of `function` and the one invocation it may be running.

    Invocations are served one at a time, in order. When the binary dies it is started again
    for the next invocation, and the invocation it was running fails with Runtime.ExitError;
    one that takes longer than its timeout fails with Sandbox.Timedout and the binary is
    restarted. The process inherits `base_env` (default: this process's environment) under
    the variables Lambda sets, and writes to `output`. Subclasses may override
    `started(process)` (called, with the lock held, right after each start)."""

    def __init__(
        self,
        function: Function,
        *,
        base_env: Optional[Mapping[str, str]] = None,
        output: IO[Any] = sys.stderr,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.function = function
        self.base_env = os.environ if base_env is None else base_env
        self.output = output
        self.log = log
        self.port: Optional[int] = None  # of the Runtime API; set before the first start
        self.lock = threading.Condition()
        self.invoke_lock = threading.Lock()  # serialises invocations
        self.process: Optional[subprocess.Popen] = None
        self.generation = 0  # bumps at each start, so a dead process is told apart
        self.starts = 0
        self.pending: Optional[Invocation] = None  # waiting to be picked up by /next
        self.current: Optional[Invocation] = None  # the runtime is working on it
        self.t_exec: Optional[float] = None  # when the running process was started
        self.first_poll_at: Optional[float] = None  # when it first asked for an invocation
        self.init_error: Optional[str] = None
        self.stopping = False

    # -- process -----------------------------------------------------------

    def env(self) -> dict:
        function = self.function
        return lambda_env(self.base_env, function.binary, self.port, function.name,
                          region=function.region, memory_mb=function.memory_mb,
                          handler=function.handler)

    def spawn(self) -> None:
        """Starts the binary (caller holds self.lock)."""
        self.generation += 1
        self.starts += 1
        self.first_poll_at = None
        self.init_error = None
        self.log(f"starting {self.function.binary} (start #{self.generation})")
        self.t_exec = now()
        self.process = subprocess.Popen(  # noqa: S603 - the handler binary under test
            [os.path.abspath(self.function.binary)],
            env=self.env(),
            stdin=subprocess.DEVNULL,
            stdout=self.output,
            stderr=self.output,
        )
        threading.Thread(
            target=self._watch, args=(self.process, self.generation), daemon=True
        ).start()
        self.started(self.process)

    def started(self, process: subprocess.Popen) -> None:
        """Called after each start of the binary, with the lock held."""

    def _watch(self, process: subprocess.Popen, generation: int) -> None:
        code = process.wait()
        with self.lock:
            if generation != self.generation:
                return
            self.process = None
            self.first_poll_at = None
            if not self.stopping:
                self.log(f"handler exited: {exit_description(code)}")
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

    def kill(self) -> None:
        """Stops the binary (caller holds self.lock)."""
        process = self.process
        if process is None:
            return
        self.generation += 1  # the watcher of that process no longer counts
        self.process = None
        self.first_poll_at = None
        stop_process(process)

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ensure_running(self, wait_seconds: float) -> bool:
        """Starts the binary if needed and waits until it polls /next; whether it did."""
        with self.lock:
            if not self.running():
                self.spawn()
            deadline = time.monotonic() + wait_seconds
            while self.first_poll_at is None and self.process is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.lock.wait(left)
            return self.first_poll_at is not None

    def handler_pid(self) -> Optional[int]:
        with self.lock:
            return self.process.pid if self.running() else None

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.kill()
            self.lock.notify_all()

    # -- invoke ------------------------------------------------------------

    def invoke(self, payload: bytes, timeout: float, init_timeout: float = 30.0) -> Invocation:
        """Runs one invocation to its end (an answer, an error, or `timeout` seconds)."""
        with self.invoke_lock:
            inv = Invocation(payload)
            started = self.ensure_running(init_timeout)
            with self.lock:
                if not started and self.process is None:
                    message = "Runtime exited before asking for an invocation"
                    if self.init_error:
                        message += f": {self.init_error}"
                    inv.finish(error_body("Runtime.ExitError", message), "Unhandled")
                    return inv
                # alive but slow to start: queue anyway, the timeout applies
                inv.deadline_ms = int((time.time() + self.function.deadline_seconds) * 1000)
                inv.t_queued = now()
                self.pending = inv
                self.lock.notify_all()
            if not inv.done.wait(timeout):
                with self.lock:
                    if inv.finish(
                        error_body(
                            "Sandbox.Timedout",
                            f"RequestId: {inv.request_id} Error: Task timed out after "
                            f"{timeout:.2f} seconds",
                        ),
                        "Unhandled",
                    ):
                        inv.timed_out = True
                        self.log(f"invocation {inv.request_id} timed out; restarting handler")
                        self.pending = None
                        self.current = None
                        self.kill()
            return inv

    # -- the Runtime API's side ----------------------------------------------

    def next_invocation(self) -> Optional[Invocation]:
        """Blocks until there is an invocation for the runtime (None: we stop, or its process
        is gone)."""
        with self.lock:
            generation = self.generation
            if self.first_poll_at is None:
                self.first_poll_at = now()
            self.lock.notify_all()
            while (
                self.pending is None
                and not self.stopping
                and generation == self.generation
            ):
                self.lock.wait(1.0)
            if self.stopping or generation != self.generation:
                return None
            inv, self.pending = self.pending, None
            self.current = inv
            return inv

    def requeue(self, inv: Invocation) -> None:
        """The runtime's connection broke before it got the invocation."""
        with self.lock:
            if self.current is inv and not inv.done.is_set():
                self.current = None
                self.pending = inv
                self.lock.notify_all()

    def complete(self, request_id: str, body: bytes, function_error: Optional[str]) -> bool:
        with self.lock:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                return False
            self.current = None
            inv.finish(body, function_error)
            return True

    def record_init_error(self, body: bytes) -> None:
        with self.lock:
            try:
                detail = json.loads(body or b"{}")
                text = f"{detail.get('errorType', '')}: {detail.get('errorMessage', '')}"
            except (ValueError, AttributeError):
                text = body.decode("utf-8", "replace")
            self.init_error = text.strip(": ")
            self.log(f"init error: {self.init_error}")
            inv = self.current or self.pending
            if inv is not None:
                self.current = None
                self.pending = None
                inv.finish(body or error_body("Runtime.InitError", "init error"), "Unhandled")


class QuietServer(ThreadingHTTPServer):
    """A threaded HTTP server that does not report clients (runtimes) that went away."""

    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class RuntimeAPIHandler(BaseHTTPRequestHandler):
    """Serves a `Sandbox`'s Runtime API. Subclasses answer other routes in `other_get` and
    `other_post` (returning True when they did); `serving(sandbox)` binds one to a sandbox
    (and sets the subclass's own class attributes, if any)."""

    protocol_version = "HTTP/1.1"
    sandbox: Sandbox

    @classmethod
    def serving(cls, sandbox: Sandbox, **attributes: Any) -> type:
        return type(cls.__name__, (cls,), dict(attributes, sandbox=sandbox))

    def log_message(self, format, *args):  # noqa: A002 - stdlib signature
        pass

    def read_body(self) -> bytes:
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

    def send(self, status: int, body: bytes = b"", headers: Optional[Mapping[str, str]] = None,
             content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if body:
            self.wfile.write(body)
        self.wfile.flush()

    def aws_error(self, status: int, error_type: str, message: str) -> None:
        body = json.dumps({"Type": "User", "message": message}).encode()
        self.send(status, body, {"x-amzn-ErrorType": error_type})

    def other_get(self, path: str) -> bool:
        return False

    def other_post(self, path: str, body: bytes) -> bool:
        return False

    def do_GET(self):  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0]
        if path == NEXT_PATH:
            self._next()
        elif not self.other_get(path):
            self.aws_error(404, "ResourceNotFoundException", f"no route for GET {path}")

    def do_POST(self):  # noqa: N802 - stdlib name
        path = self.path.split("?", 1)[0]
        body = self.read_body()
        match = RESULT_PATH.match(path)
        if match:
            self._result(*match.groups(), body)
        elif path == INIT_ERROR_PATH:
            self.sandbox.record_init_error(body)
            self.send(202, b'{"status":"OK"}')
        elif not self.other_post(path, body):
            self.aws_error(404, "ResourceNotFoundException", f"no route for POST {path}")

    def _next(self) -> None:
        sandbox = self.sandbox
        inv = sandbox.next_invocation()
        if inv is None:
            self.send(500, error_body("ServiceShutdown", "shutting down"))
            return
        try:
            self.send(200, inv.payload, invocation_headers(inv.request_id, inv.deadline_ms, sandbox.function.arn))
        except OSError:
            sandbox.requeue(inv)
            raise
        inv.t_sent = now()

    def _result(self, request_id: str, kind: str, body: bytes) -> None:
        if kind == "response":
            ok = self.sandbox.complete(request_id, body, None)
        else:
            if not body:
                error_type = self.headers.get("Lambda-Runtime-Function-Error-Type", "Unhandled")
                body = error_body(error_type, "handler error")
            ok = self.sandbox.complete(request_id, body, "Unhandled")
        if ok:
            self.send(202, b'{"status":"OK"}')
        else:
            self.send(400, error_body("InvalidRequestID", f"unknown request {request_id}"))
