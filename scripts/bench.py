#!/usr/bin/env python3
"""Benchmark of the Org::ECS::TaskRun handler binary (run it through scripts/bench.sh).

The real binary runs behind a Lambda Runtime API served here (one server and one
process per scenario), talks to the AWS emulator through a small timing proxy (one per
process, so every AWS call is seen with its start and answer times), and is fed
CloudFormation handler requests the way the Registry sends them: scalars as strings,
one bearer token per operation, re-invoked with the returned callbackContext and
resourceModel after sleeping exactly callbackDelaySeconds, each invocation with
Lambda-Runtime-Deadline-Ms = now + 60 s.

Figures (each with its goal), in one table, also written to .tmp/bench/<label>.txt:
  1 init: exec -> first GET /next, interleaved with python boto3.client("ecs")
  2 first-event latency of a LIST, cold and warm
  3 peak RSS (VmHWM) over a Count 100 create + delete
  4 AWS calls per invocation and per poll of running tasks (Count 1, 10, 25, 100)
  5 invocations and detection lag for tasks of 5, 20 (and 60) s
  6 the callbackDelaySeconds answered while DescribeTasks is throttled
  7 the handler zip size

Counts come from the per-process proxies and are checked against the emulator's own
call log (GET /_taskrun/calls, diff before/after, calls told apart by the scenario's
cluster / family / logical id in their bodies).
"""
import argparse
import collections
import datetime
import hashlib
import http.server
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
import zipfile

import boto3
from botocore.config import Config

REGION = "us-east-1"
ACCOUNT = "123456789012"
CREDS = {
    "accessKeyId": "AKIAIOSFODNN7EXAMPLE",
    "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "sessionToken": "bench",
}
STACK = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/bench/0b3c1d2e-bench"
NEXT_PATH = "/2018-06-01/runtime/invocation/next"
RESULT_PATH = re.compile(r"^/2018-06-01/runtime/invocation/([^/]+)/(response|error)$")
INIT_ERROR_PATH = "/2018-06-01/runtime/init/error"
DEADLINE_SECONDS = 60.0
ROUND_GAP = 0.5  # DescribeTasks calls closer than this belong to one poll round
MIB = 1024 * 1024

now = time.perf_counter


def note(message):
    stamp = datetime.datetime.now().strftime("%H:%M:%S")
    print(f"[bench {stamp}] {message}", file=sys.stderr, flush=True)


def strings(value):
    """Scalars as CloudFormation sends them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, list):
        return [strings(v) for v in value]
    if isinstance(value, dict):
        return {k: strings(v) for k, v in value.items()}
    return value


def median(values):
    return statistics.median(values) if values else float("nan")


# --------------------------------------------------------------------------- emulator


class Emulator:
    def __init__(self, url):
        self.url = url.rstrip("/")
        parsed = urllib.parse.urlparse(self.url)
        self.host, self.port = parsed.hostname, parsed.port
        session = boto3.Session(
            aws_access_key_id=CREDS["accessKeyId"],
            aws_secret_access_key=CREDS["secretAccessKey"],
            region_name=REGION,
        )
        self.ecs = session.client(
            "ecs", endpoint_url=self.url, config=Config(retries={"max_attempts": 2})
        )

    def _request(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"{self.url}/_taskrun/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            return json.loads(resp.read() or b"null")

    def control(self, path, body):
        return self._request("POST", path, body)

    def calls(self):
        return self._request("GET", "calls")

    def scenario(self, tag, outcome):
        """A cluster and a task definition family of their own, named after `tag`."""
        name = f"bench-{tag}"
        self.ecs.create_cluster(clusterName=name)
        self.ecs.register_task_definition(
            family=name,
            containerDefinitions=[
                {"name": "app", "image": "public.ecr.aws/docker/library/busybox:1.36",
                 "memory": 128, "essential": True, "command": ["sh", "-c", "true"]},
            ],
        )
        self.control("outcomes", {"family": name, "default": outcome})
        return name


# --------------------------------------------------------------------------- timing proxy


def api_name(head):
    """The emulator's name for the AWS call whose request starts with `head`."""
    text = head.decode("latin-1", "replace")
    target = re.search(r"(?im)^x-amz-target:\s*([^\r\n]+)", text)
    scope = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/aws4_request", text)
    service = scope.group(1) if scope else "?"
    if target:
        prefix, _, op = target.group(1).strip().rpartition(".")
        if prefix.startswith("AmazonEC2ContainerService"):
            return op
        return f"{service}:{op}"
    action = re.search(r"Action=([A-Za-z]+)", text)
    return f"{service}:{action.group(1) if action else '?'}"


class Proxy:
    """A TCP relay in front of the emulator that logs every HTTP request: its API, when
    its first byte arrived, when the first byte of its answer came back, and the status."""

    def __init__(self, host, port):
        self.upstream = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.calls = []
        self.lock = threading.Lock()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self):
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass

    def _accept(self):
        while not self.closed:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client):
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        for s in (client, upstream):
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        state = {"call": None}

        def pump_up():
            try:
                while True:
                    data = client.recv(65536)
                    if not data:
                        break
                    with self.lock:
                        call = state["call"]
                        if call is None or call["t1"] is not None:
                            call = {"api": None, "t0": now(), "t1": None, "status": None, "head": b""}
                            state["call"] = call
                            self.calls.append(call)
                        if call["api"] is None:
                            call["head"] += data
                            if b"\r\n\r\n" in call["head"] or len(call["head"]) > 65536:
                                call["api"] = api_name(call["head"][:65536])
                                call["head"] = b""
                    upstream.sendall(data)
            except OSError:
                pass
            finally:
                try:
                    upstream.shutdown(socket.SHUT_WR)
                except OSError:
                    pass

        def pump_down():
            try:
                while True:
                    data = upstream.recv(65536)
                    if not data:
                        break
                    with self.lock:
                        call = state["call"]
                        if call is not None and call["t1"] is None:
                            call["t1"] = now()
                            m = re.match(rb"HTTP/1\.[01] (\d{3})", data)
                            call["status"] = int(m.group(1)) if m else None
                            if call["api"] is None:
                                call["api"] = api_name(call["head"])
                    client.sendall(data)
            except OSError:
                pass
            finally:
                for s in (client, upstream):
                    try:
                        s.close()
                    except OSError:
                        pass

        threading.Thread(target=pump_up, daemon=True).start()
        pump_down()

    def between(self, t0, t1):
        with self.lock:
            return [c for c in self.calls if t0 <= c["t0"] <= t1]


# --------------------------------------------------------------------------- the handler


class Invocation:
    def __init__(self, payload):
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.done = threading.Event()
        self.body = b""
        self.error = None
        self.t_sent = None
        self.t_answered = None


class QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, BrokenPipeError)):
            return  # a handler process that went away
        super().handle_error(request, client_address)


class Handler:
    """One handler process behind its own Lambda Runtime API (like one Lambda sandbox)."""

    def __init__(self, binary, endpoint, log_file, name="TaskRun"):
        self.binary = os.path.abspath(binary)
        self.endpoint = endpoint
        self.log_file = log_file
        self.name = name
        self.cond = threading.Condition()
        self.pending = None
        self.current = None
        self.generation = 0
        self.process = None
        self.stopping = False
        self.t_exec = None
        self.t_first_next = None
        self.hwm_kib = 0
        self.peak_sample = {}
        self.init_error = None
        self.starts = 0
        self.server = QuietServer(("127.0.0.1", 0), self._request_class())
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                         daemon=True).start()

    def env(self):
        stamp = datetime.datetime.now(datetime.timezone.utc)
        return {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "TZ": ":UTC",
            "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{self.port}",
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": f"{stamp:%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}",
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "LAMBDA_TASK_ROOT": os.path.dirname(self.binary),
            "_HANDLER": "bootstrap",
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    # -- process

    def start(self, wait=30.0):
        with self.cond:
            self.generation += 1
            self.starts += 1
            self.t_first_next = None
            self.hwm_kib = 0
            self.t_exec = now()
            self.process = subprocess.Popen(  # noqa: S603 - the handler under test
                [self.binary], env=self.env(), stdin=subprocess.DEVNULL,
                stdout=self.log_file, stderr=self.log_file,
            )
            process, generation = self.process, self.generation
        threading.Thread(target=self._watch, args=(process, generation), daemon=True).start()
        threading.Thread(target=self._sample, args=(process,), daemon=True).start()
        deadline = now() + wait
        with self.cond:
            while self.t_first_next is None and self.process is process and now() < deadline:
                self.cond.wait(0.05)
            if self.t_first_next is None:
                raise RuntimeError(f"{self.binary} did not ask for an invocation "
                                   f"({self.init_error or 'no init error reported'})")
        return self.t_first_next - self.t_exec

    def _read_hwm(self, pid):
        fields = {}
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as f:
                for line in f:
                    key, _, rest = line.partition(":")
                    if key in ("VmHWM", "VmRSS", "RssAnon", "RssFile", "Threads"):
                        fields[key] = int(rest.split()[0])
        except (OSError, ValueError, IndexError):
            pass
        if fields.get("VmRSS", 0) >= self.peak_sample.get("VmRSS", 0):
            self.peak_sample = fields
        return fields.get("VmHWM", 0)

    def _sample(self, process):
        while process.poll() is None:
            self.hwm_kib = max(self.hwm_kib, self._read_hwm(process.pid))
            time.sleep(0.1)

    def peak_rss_mib(self):
        process = self.process
        if process is not None and process.poll() is None:
            self.hwm_kib = max(self.hwm_kib, self._read_hwm(process.pid))
        return self.hwm_kib / 1024

    def _watch(self, process, generation):
        code = process.wait()
        with self.cond:
            if generation != self.generation:
                return
            self.process = None
            for inv in (self.current, self.pending):
                if inv is not None and not inv.done.is_set():
                    inv.error = f"Runtime.ExitError: exit {code}"
                    inv.body = json.dumps({"errorType": "Runtime.ExitError",
                                           "errorMessage": f"exit {code}"}).encode()
                    inv.t_answered = now()
                    inv.done.set()
            self.current = self.pending = None
            self.cond.notify_all()

    def stop(self):
        with self.cond:
            self.stopping = True
            self.generation += 1
            process, self.process = self.process, None
            self.cond.notify_all()
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.server.shutdown()
        self.server.server_close()

    # -- invoke

    def invoke(self, event, timeout=DEADLINE_SECONDS + 15):
        if self.process is None or self.process.poll() is not None:
            note(f"handler process gone; starting a fresh one (start #{self.starts + 1})")
            self.start()
        inv = Invocation(json.dumps(event).encode())
        with self.cond:
            self.pending = inv
            self.cond.notify_all()
        t0 = now()
        if not inv.done.wait(timeout):
            raise RuntimeError(f"no answer within {timeout:.0f} s")
        try:
            answer = json.loads(inv.body or b"null")
        except ValueError:
            answer = {"errorType": "InvalidJSON", "errorMessage": inv.body[:200].decode("utf-8", "replace")}
        if not isinstance(answer, dict):
            answer = {"errorType": "NotAnObject", "errorMessage": str(answer)[:200]}
        return answer, {"t0": t0, "t_sent": inv.t_sent or t0, "t_answered": inv.t_answered or now(),
                        "error": inv.error}

    def _next(self):
        with self.cond:
            generation = self.generation
            if self.t_first_next is None:
                self.t_first_next = now()
                self.cond.notify_all()
            while self.pending is None and not self.stopping and generation == self.generation:
                self.cond.wait(0.5)
            if self.stopping or generation != self.generation:
                return None
            inv, self.pending = self.pending, None
            self.current = inv
            return inv

    def _complete(self, request_id, body, error):
        with self.cond:
            inv = self.current
            if inv is None or inv.request_id != request_id:
                return False
            inv.t_answered = now()
            inv.body = body
            inv.error = error
            self.current = None
            inv.done.set()
            return True

    def _request_class(self):
        handler = self

        class Request(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002
                pass

            def _send(self, status, body=b"", headers=None):
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.end_headers()
                if body:
                    self.wfile.write(body)
                self.wfile.flush()

            def _body(self):
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    return self.rfile.read(length)
                if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                    chunks = []
                    while True:
                        size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return b"".join(chunks)
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                return b""

            def do_GET(self):  # noqa: N802
                if self.path.split("?", 1)[0] != NEXT_PATH:
                    self._send(404, b'{"message":"not found"}')
                    return
                inv = handler._next()
                if inv is None:
                    self._send(500, b'{"errorType":"ServiceShutdown"}')
                    return
                deadline_ms = int((time.time() + DEADLINE_SECONDS) * 1000)
                self._send(200, inv.payload, {
                    "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn":
                        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{handler.name}",
                    "Lambda-Runtime-Trace-Id":
                        f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
                })
                inv.t_sent = now()

            def do_POST(self):  # noqa: N802
                path = self.path.split("?", 1)[0]
                body = self._body()
                match = RESULT_PATH.match(path)
                if match:
                    request_id, kind = match.groups()
                    error = None if kind == "response" else (
                        self.headers.get("Lambda-Runtime-Function-Error-Type") or "Unhandled")
                    if handler._complete(request_id, body, error):
                        self._send(202, b'{"status":"OK"}')
                    else:
                        self._send(400, b'{"errorType":"InvalidRequestID"}')
                    return
                if path == INIT_ERROR_PATH:
                    handler.init_error = body.decode("utf-8", "replace")[:300]
                    self._send(202, b'{"status":"OK"}')
                    return
                self._send(404, b'{"message":"not found"}')

        return Request


# --------------------------------------------------------------------------- operations


class Scenario:
    """One handler process with its own proxy, cluster, family and logical id."""

    def __init__(self, bench, tag, outcome, direct=False):
        self.bench = bench
        self.tag = tag
        self.cluster = bench.emulator.scenario(tag, outcome) if outcome is not None else None
        self.logical_id = "Bench" + tag.replace("-", "").capitalize()
        self.proxy = None if direct else Proxy(bench.emulator.host, bench.emulator.port)
        endpoint = bench.emulator.url if direct else self.proxy.url
        self.handler = Handler(bench.binary, endpoint, bench.handler_log)

    def close(self):
        try:
            self.handler.stop()
        finally:
            if self.proxy:
                self.proxy.close()

    def properties(self, **extra):
        props = {"Cluster": self.cluster, "TaskDefinition": self.cluster}
        props.update(extra)
        return props

    def operate(self, action, props, stop=None, max_seconds=400):
        """Plays one operation as CloudFormation does; returns its invocations."""
        token = str(uuid.uuid4())
        context = None
        props = strings(props)
        invocations = []
        started = now()
        while True:
            data = {"callerCredentials": CREDS, "logicalResourceId": self.logical_id,
                    "resourceProperties": props}
            event = {"action": action, "awsAccountId": ACCOUNT, "bearerToken": token,
                     "region": REGION, "resourceType": "Org::ECS::TaskRun", "stackId": STACK,
                     "requestData": data}
            if context is not None:
                event["callbackContext"] = context
            answer, timing = self.handler.invoke(event)
            inv = dict(timing, answer=answer, status=answer.get("status"),
                       delay=answer.get("callbackDelaySeconds"), calls=[])
            if self.proxy:
                inv["calls"] = self.proxy.between(inv["t0"], inv["t_answered"])
            invocations.append(inv)
            if inv["status"] != "IN_PROGRESS":
                break
            if stop is not None and stop(inv):
                break
            if now() - started > max_seconds:
                note(f"{self.tag}: {action} still IN_PROGRESS after {max_seconds} s; giving up")
                break
            context = answer.get("callbackContext")
            if answer.get("resourceModel") is not None:
                props = answer["resourceModel"]
            time.sleep(float(inv["delay"] or 0))
        return invocations


def outcome_text(inv):
    answer = inv["answer"]
    if inv["status"] is None:
        return f"error {answer.get('errorType')}: {str(answer.get('errorMessage'))[:80]}"
    text = inv["status"]
    if answer.get("errorCode"):
        text += f" {answer['errorCode']}"
    if inv["status"] == "FAILED" and answer.get("message"):
        text += f": {answer['message'].splitlines()[0][:80]}"
    return text


def split_calls(calls):
    dt = sum(1 for c in calls if c["api"] == "DescribeTasks")
    other = collections.Counter(c["api"] for c in calls if c["api"] != "DescribeTasks")
    return dt, other


def fmt_other(counter):
    return ", ".join(f"{api} {n}" for api, n in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))


def fmt_calls(calls):
    dt, other = split_calls(calls)
    text = f"{dt} DescribeTasks + {sum(other.values())} other"
    return text, fmt_other(other)


def running_polls(invocations):
    """Polls of running tasks: DescribeTasks rounds (calls closer than ROUND_GAP) and the
    other calls up to the next round; the first round of a callback carries the calls
    the callback made before it (reading the record, say). The launch of the first
    invocation and the round that saw the tasks stopped are not polls of running tasks."""
    polls = []
    for index, inv in enumerate(invocations):
        calls = sorted(inv["calls"], key=lambda c: c["t0"])
        starts = []
        last = None
        for i, c in enumerate(calls):
            if c["api"] == "DescribeTasks":
                if last is None or c["t0"] - last > ROUND_GAP:
                    starts.append(i)
                last = c["t0"]
        if not starts:
            continue
        for r, start in enumerate(starts):
            begin = 0 if (r == 0 and index > 0) else start
            end = starts[r + 1] if r + 1 < len(starts) else len(calls)
            is_last = r + 1 == len(starts)
            if is_last and inv["status"] != "IN_PROGRESS":
                continue  # this round saw the run end
            polls.append(calls[begin:end])
    return polls


def max_in_flight(calls, api):
    spans = [(c["t0"], c["t1"] or c["t0"]) for c in calls if c["api"] == api]
    best = 0
    for start, _ in spans:
        best = max(best, sum(1 for s, e in spans if s <= start < e or s == start))
    return best, len(spans)


# --------------------------------------------------------------------------- table


class Table:
    def __init__(self):
        self.rows = []
        self.details = []

    def row(self, figure, value, goal="", met=None):
        self.rows.append((figure, value, goal, met))

    def sub(self, text):
        """A line under the last row, in the table."""
        self.rows.append(("", text, None, None))

    def detail(self, text):
        """A line for the details file only."""
        self.details.append(text)

    def sort_by_figure(self):
        """Blocks (a row and the notes under it) in figure order, stable."""
        blocks = []
        for row in self.rows:
            if row[0] == "" and row[2] is None and blocks:
                blocks[-1].append(row)
            else:
                blocks.append([row])
        blocks.sort(key=lambda b: b[0][0][:1])
        self.rows = [row for block in blocks for row in block]

    def goals(self):
        judged = [r for r in self.rows if r[2] and r[3] in (True, False)]
        return sum(1 for r in judged if r[3]), len(judged)

    def render(self):
        w_fig = max(46, max(len(r[0]) for r in self.rows) + 2)
        w_val = 34
        lines = [f"{'figure':<{w_fig}}{'value':<{w_val}}{'goal':<26}met"]
        for figure, value, goal, met in self.rows:
            if goal is None:
                lines.append(f"{'':<{w_fig}}  {value}")
                continue
            mark = {True: "yes", False: "NO", None: ""}.get(met, str(met))
            if met == "n/a":
                mark = "n/a"
            val = value if len(value) < w_val else value + "  "
            lines.append(f"{figure:<{w_fig}}{val:<{w_val}}{goal:<26}{mark}".rstrip())
        return "\n".join(lines)


# --------------------------------------------------------------------------- the bench


class Bench:
    def __init__(self, args):
        self.args = args
        self.binary = args.binary
        self.label = args.label
        self.quick = args.quick
        self.emulator = Emulator(args.emulator_url)
        self.outdir = args.out_dir
        os.makedirs(self.outdir, exist_ok=True)
        self.handler_log = open(os.path.join(self.outdir, f"{self.label}-handler.log"), "ab")
        self.table = Table()
        self.results = {}
        self.run_tag = uuid.uuid4().hex[:4]

    def tag(self, name):
        return f"{name}{self.run_tag}"

    # -- 1 init

    def fig1_init(self):
        runs = self.args.init_runs
        note(f"1 init: exec -> first GET /next, {runs} runs interleaved with python boto3")
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        listener.settimeout(10)
        port = listener.getsockname()[1]
        env = Handler(self.binary, self.emulator.url, self.handler_log).env()
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{port}"
        devnull = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                   (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0)]
        binary = os.path.abspath(self.binary)
        python = self.args.python
        py_env = dict(env, PYTHONDONTWRITEBYTECODE="1")
        py_env.pop("AWS_LAMBDA_RUNTIME_API")
        code = 'import boto3; boto3.client("ecs")'

        def one_binary():
            t0 = now()
            pid = os.posix_spawn(binary, [binary], env, file_actions=devnull)
            try:
                conn, _ = listener.accept()
                conn.settimeout(10)
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    head += chunk
                t1 = now()
                conn.close()
            finally:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
            if not head.startswith(f"GET {NEXT_PATH}".encode()):
                raise RuntimeError(f"first request was not GET /next: {head[:80]!r}")
            return (t1 - t0) * 1000

        def one_python():
            t0 = now()
            pid = os.posix_spawn(python, [python, "-c", code], py_env, file_actions=devnull)
            _, status = os.waitpid(pid, 0)
            t1 = now()
            if os.waitstatus_to_exitcode(status) != 0:
                raise RuntimeError(f"{python} -c '{code}' failed")
            return (t1 - t0) * 1000

        one_binary(), one_python()  # warm the page cache
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(one_binary())
            theirs.append(one_python())
        listener.close()
        m_ours, m_theirs = median(ours), median(theirs)
        ratio = m_theirs / m_ours
        self.table.row(f"1 init: exec -> first GET /next, median of {runs}",
                       f"{m_ours:.2f} ms (min {min(ours):.2f})", "<= 5 ms", m_ours <= 5.0)
        self.table.row(f"1 init: python boto3.client(\"ecs\"), median of {runs}",
                       f"{m_theirs:.0f} ms = {ratio:.0f}x the handler", ">= 100x the handler", ratio >= 100)
        self.table.detail(f"1 handler init ms: {' '.join(f'{v:.2f}' for v in ours)}")
        self.table.detail(f"1 python ({python}) ms: {' '.join(f'{v:.0f}' for v in theirs)}")

    # -- 2 first-event latency

    def fig2_latency(self):
        runs = 5
        note(f"2 first-event latency: LIST cold and warm in {runs} fresh processes")
        cold, warm, listed = [], [], None
        for i in range(runs):
            sc = Scenario(self, self.tag(f"f2p{i}"), None, direct=True)
            try:
                sc.handler.start()
                time.sleep(0.2)  # the process is idle at /next, as a sandbox after init
                for series in (cold, warm):
                    answer, timing = sc.handler.invoke(self.list_event())
                    if answer.get("status") != "SUCCESS":
                        raise RuntimeError(f"LIST answered {json.dumps(answer)[:200]}")
                    listed = len(answer.get("resourceModels") or [])
                    series.append((timing["t_answered"] - timing["t_sent"]) * 1000)
            finally:
                sc.close()
        self.table.row(f"2 first event LIST, median of {runs}: cold / warm",
                       f"{median(cold):.1f} / {median(warm):.1f} ms", "report")
        self.table.detail(f"2 LIST ({listed} records) from event sent to answer, cold ms: "
                          f"{' '.join(f'{v:.1f}' for v in cold)}; warm ms: {' '.join(f'{v:.1f}' for v in warm)}")

    def list_event(self):
        return {"action": "LIST", "awsAccountId": ACCOUNT, "bearerToken": str(uuid.uuid4()),
                "region": REGION, "resourceType": "Org::ECS::TaskRun", "stackId": STACK,
                "requestData": {"callerCredentials": CREDS, "resourceProperties": {}}}

    # -- 3 peak RSS

    def fig3_rss(self):
        note("3 peak RSS over a Count 100 lifecycle (create with 3 s tasks, then delete)")
        sc = Scenario(self, self.tag("f3rss"), {"kind": "exit", "afterSeconds": 3})
        try:
            sc.handler.start()
            created = sc.operate("CREATE", sc.properties(Count=100, PollInterval=1))
            model = created[-1]["answer"].get("resourceModel") or {}
            deleted = []
            if created[-1]["status"] == "SUCCESS":
                deleted = sc.operate("DELETE", model)
            peak = sc.handler.peak_rss_mib()
            at_peak = sc.handler.peak_sample
        finally:
            sc.close()
        ok = created[-1]["status"] == "SUCCESS" and deleted and deleted[-1]["status"] == "SUCCESS"
        self.table.row("3 peak RSS (VmHWM), Count 100 create+delete",
                       f"{peak:.1f} MiB" + (f" (anon {at_peak['RssAnon'] / 1024:.1f}, file "
                                            f"{at_peak['RssFile'] / 1024:.1f})" if "RssFile" in at_peak else "")
                       + ("" if ok else " (lifecycle FAILED)"), "<= 16 MiB", peak <= 16.0)
        self.table.detail(f"3 CREATE {outcome_text(created[-1])} in {len(created)} invocation(s); "
                          f"DELETE {outcome_text(deleted[-1]) if deleted else 'not run'}; largest sampled "
                          f"VmRSS (every 0.1 s): " + ", ".join(f"{k} {v / 1024:.1f} MiB" if k != "Threads"
                                                              else f"{k} {v}" for k, v in at_peak.items()))

    # -- 4 calls

    def fig4_scenarios(self):
        seconds = 40 if self.quick else 60
        scs = []
        for count in (1, 10, 25, 100):
            sc = Scenario(self, self.tag(f"f4n{count:03d}"), {"kind": "exit", "afterSeconds": seconds})
            sc.count = count
            scs.append(sc)
        return seconds, scs

    def fig4_run(self, sc):
        sc.handler.start()
        sc.created = sc.operate("CREATE", sc.properties(Count=sc.count, PollInterval=1, Timeout=600))
        model = sc.created[-1]["answer"].get("resourceModel") or {}
        sc.deleted = sc.operate("DELETE", model) if model.get("Id") else []

    def fig4_report(self, seconds, scs):
        counts = [sc.count for sc in scs]
        cells = collections.defaultdict(list)
        poll_ok, poll_other, polls_total, other_polls = True, collections.Counter(), 0, 0

        def cell(calls):
            dt, other = split_calls(calls)
            return f"{dt}+{sum(other.values())}"

        for sc in scs:
            n, want = sc.count, math.ceil(sc.count / 100)
            created, deleted = sc.created, sc.deleted
            first = created[0]
            cells["first"].append(cell(first["calls"]))
            self.table.detail(f"4 Count {n} CREATE 1st invocation: {first['status']} after "
                              f"{first['t_answered'] - first['t0']:.1f} s; {fmt_calls(first['calls'])[0]}: "
                              f"{fmt_calls(first['calls'])[1]}")
            if len(created) > 1:
                cb = created[1]
                cells["callback"].append(cell(cb["calls"]))
                self.table.detail(f"4 Count {n} 1st callback: {cb['status']} after "
                                  f"{cb['t_answered'] - cb['t0']:.1f} s; {fmt_calls(cb['calls'])[0]}: "
                                  f"{fmt_calls(cb['calls'])[1]}")
            else:
                cells["callback"].append("-")
            polls = running_polls(created)
            shapes = collections.Counter()
            for p in polls:
                dt, oth = split_calls(p)
                shapes[(dt, tuple(sorted(oth.items())))] += 1
            if shapes:
                worst = max(shapes, key=lambda sh: (sum(v for _, v in sh[1]), abs(sh[0] - want)))
                cells["poll"].append(f"{worst[0]}+{sum(v for _, v in worst[1])}")
                if any(sh[0] != want or sh[1] for sh in shapes):
                    poll_ok = False
                for sh, times in shapes.items():
                    if sh[1]:
                        other_polls += times
                        poll_other.update(a for a, _ in sh[1])
                polls_total += len(polls)
                self.table.detail(f"4 Count {n} polls of running tasks: " + "; ".join(
                    f"{times}x {sh[0]} DescribeTasks" + "".join(f" + {a} {v}" for a, v in sh[1])
                    for sh, times in shapes.most_common()))
            else:
                cells["poll"].append("none")
                poll_ok = False
            end = created[-1]
            cells["ops"].append(f"{len(created)}/{end['t_answered'] - created[0]['t0']:.0f}s"
                                + ("" if end["status"] == "SUCCESS" else "!"))
            self.table.detail(f"4 Count {n} CREATE {outcome_text(end)} after {len(created)} invocation(s), "
                              f"{end['t_answered'] - created[0]['t0']:.1f} s")
            if deleted:
                all_calls = [c for inv in deleted for c in inv["calls"]]
                cells["delete"].append(cell(all_calls) + ("" if deleted[-1]["status"] == "SUCCESS" else "!"))
                self.table.detail(f"4 Count {n} DELETE {outcome_text(deleted[-1])} in {len(deleted)} "
                                  f"invocation(s); {fmt_calls(all_calls)[0]}: {fmt_calls(all_calls)[1]}")
            else:
                cells["delete"].append("-")
            if n == 100:
                self.results["runtask_flight"] = max_in_flight(first["calls"], "RunTask")

        def line(key):
            return "  ".join(f"{c:<6}" for c in cells[key]).rstrip()

        head = " / ".join(str(c) for c in counts)
        self.table.row(f"4 calls DescribeTasks+other, Count {head}:", f"({seconds} s tasks, PollInterval 1)", "")
        self.table.row("4   CREATE 1st invocation", line("first"), "report")
        self.table.row("4   1st callback (tasks running)", line("callback"), "report")
        self.table.row("4   per poll of running tasks (worst)", line("poll"), "DT only, 1 per 100 tasks", poll_ok)
        if poll_other:
            self.table.sub(f"other calls on {other_polls} of {polls_total} polls: "
                           + ", ".join(sorted(poll_other)))
        self.table.row("4   DELETE", line("delete"), "report")
        self.table.row("4   CREATE invocations/seconds", line("ops"), "report")
        flight, total = self.results.get("runtask_flight", (0, 0))
        self.table.row("4   Count 100: RunTask calls in flight", f"max {flight} of {total}",
                       ">= 2 (concurrent)", flight >= 2)

    # -- 5 detection lag

    def fig5_scenarios(self):
        lengths = (5, 20) if self.quick else (5, 20, 60)
        scs = []
        for seconds in lengths:
            for poll in (None, 1):
                sc = Scenario(self, self.tag(f"f5t{seconds:02d}p{poll or 0:02d}"),
                              {"kind": "exit", "afterSeconds": seconds})
                sc.seconds, sc.poll = seconds, poll
                scs.append(sc)
        return scs

    def fig5_run(self, sc):
        sc.handler.start()
        props = sc.properties(Timeout=600)
        if sc.poll:
            props["PollInterval"] = sc.poll
        sc.created = sc.operate("CREATE", props)

    def fig5_report(self, scs):
        for sc in scs:
            created = sc.created
            end = created[-1]
            runs = [c for inv in created for c in inv["calls"] if c["api"] == "RunTask"]
            start = min((c["t0"] for c in runs), default=created[0]["t0"])
            lag = end["t_answered"] - start - sc.seconds
            poll = sc.poll or 15
            name = f"5 lag, {sc.seconds} s task, PollInterval {sc.poll or '15 (default)'}"
            if sc.seconds <= 20:
                goal = "<= 2 s" + (", 1 inv" if sc.seconds == 20 else "")
                met = lag <= 2.0 and (sc.seconds != 20 or len(created) == 1)
            else:
                goal = f"<= {poll} s"
                met = lag <= poll
            ok = end["status"] == "SUCCESS"
            value = f"{lag:.2f} s, {len(created)} inv" + ("" if ok else f", {outcome_text(end)[:40]}")
            self.table.row(name, value, goal, met and ok)
            delays = [inv["delay"] for inv in created if inv["status"] == "IN_PROGRESS"]
            self.table.detail(f"{name}: {outcome_text(end)}; callbackDelaySeconds answered: "
                              + (", ".join(str(d) for d in delays) or "none"))

    # -- 6 throttled poll

    def fig6_scenario(self):
        sc = Scenario(self, self.tag("f6thr"), {"kind": "exit", "afterSeconds": 45})
        self.emulator.control("throttle", {"api": "DescribeTasks", "times": 50,
                                           "bodyContains": sc.cluster})
        return sc

    def fig6_run(self, sc):
        sc.handler.start()

        def throttled(inv):
            return any(c["api"] == "DescribeTasks" and (c["status"] or 0) >= 400 for c in inv["calls"])

        # Stops at the first IN_PROGRESS of an invocation that met a throttled poll.
        sc.created = sc.operate("CREATE", sc.properties(PollInterval=1, Timeout=600),
                                stop=throttled, max_seconds=120)
        self.emulator.control("throttle", {"api": "DescribeTasks", "times": 0,
                                           "bodyContains": sc.cluster})
        model = sc.created[-1]["answer"].get("resourceModel") or {}
        sc.deleted = sc.operate("DELETE", model) if model.get("Id") else []

    def fig6_report(self, sc):
        met_throttle = []
        for index, inv in enumerate(sc.created):
            n = sum(1 for c in inv["calls"] if c["api"] == "DescribeTasks" and (c["status"] or 0) >= 400)
            if n:
                met_throttle.append((index, inv, n))
        throttled_total = sum(n for _, _, n in met_throttle)
        answered = [(i, inv) for i, inv, _ in met_throttle if inv["status"] == "IN_PROGRESS"]
        if answered:
            index, inv = answered[0]
            delay = inv["delay"]
            value = f"callbackDelaySeconds {delay} (inv {index + 1})"
            met = delay is not None and float(delay) <= 1.0
            detail = (f"invocation {index + 1} met {throttled_total} throttled DescribeTasks "
                      f"(of 50) in {inv['t_answered'] - inv['t0']:.1f} s and answered IN_PROGRESS")
        elif met_throttle:
            end = sc.created[-1]
            value = f"no IN_PROGRESS while throttled"
            met = end["status"] == "SUCCESS"
            detail = f"{throttled_total} throttled DescribeTasks; {outcome_text(end)} in {len(sc.created)} invocation(s)"
        else:
            value, met = "throttle not met", False
            detail = f"no throttled DescribeTasks seen; {outcome_text(sc.created[-1])}"
        self.table.row("6 DescribeTasks throttled x50, PollInterval 1", value, "<= 1 s (PollInterval)", met)
        self.table.detail(f"6 {detail}")

    # -- 7 zip size

    def fig7_zip(self):
        path = self.args.zip_binary
        name = "7 handler zip (dist binary, deflate 9)"
        if not path:
            self.table.row(name, "n/a (--binary given)", "<= 4 MiB", "n/a")
            return
        if not os.path.isfile(path):
            reason = "skipped (--quick)" if self.quick else "not built (the dist build failed?)"
            self.table.row(name, f"n/a: {reason}", "<= 4 MiB", "n/a")
            return
        zpath = os.path.join(self.outdir, f"{self.label}-handler.zip")
        info = zipfile.ZipInfo("bootstrap", date_time=(1980, 1, 1, 0, 0, 0))
        info.external_attr = (0o100755 << 16)
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            data = f.read()
        with zipfile.ZipFile(zpath, "w") as z:
            z.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
        size = os.path.getsize(zpath)
        stale = newest_source_after(os.path.getmtime(path))
        value = f"{size / MIB:.2f} MiB" + (" (STALE build)" if stale else "")
        self.table.row(name, value, "<= 4 MiB", size <= 4 * MIB)
        built = datetime.datetime.fromtimestamp(os.path.getmtime(path)).strftime("%H:%M")
        self.table.detail(f"7 {path} ({len(data) / MIB:.1f} MiB), built {built}, zipped to {zpath}"
                          + (f"; STALE: {stale} is newer" if stale else ""))

    # -- driver

    def run_parallel(self, jobs):
        errors = {}

        def wrap(key, fn, arg):
            try:
                fn(arg)
            except Exception as e:  # noqa: BLE001 - reported in the table
                errors[key] = f"{type(e).__name__}: {e}"
                note(f"{key}: {errors[key]}")

        threads = [threading.Thread(target=wrap, args=(key, fn, arg), daemon=True)
                   for key, fn, arg in jobs]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return errors

    def crosscheck(self, before, scs):
        """The emulator's own log, told apart by scenario, against the proxies."""
        new = self.emulator.calls()[before:]
        mismatches = []
        total = 0
        for sc in scs:
            key = sc.tag.lower()  # in the cluster, the family and the logical id
            emu = collections.Counter(c["api"] for c in new if key in body_text(c).lower())
            prox = collections.Counter(c["api"] for c in sc.proxy.calls)
            total += sum(emu.values())
            if emu != prox:
                diff = (emu - prox) + (prox - emu)
                mismatches.append(f"{sc.tag}: {fmt_other(diff)}")
        unattributed = len(new) - total
        return mismatches, unattributed, len(new)

    def run(self):
        started = now()
        header = (f"TaskRun bench '{self.label}': {self.binary} (sha256 {sha256(self.binary)[:10]}, "
                  f"{os.path.getsize(self.binary) / MIB:.1f} MiB), "
                  f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
                  f"load {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores{', --quick' if self.quick else ''}")
        # 4 and 6 side by side (counted per process), then 5 on its own (timing); 2 last,
        # so that LIST has records to list.
        steps = [("1", self.fig1_init), ("3", self.fig3_rss), ("4", self.phase_calls),
                 ("5", self.phase_lag), ("2", self.fig2_latency), ("7", self.fig7_zip)]
        only = set(self.args.only.split(",")) if self.args.only else None
        for key, step in steps:
            if only is None or key in only:
                self.guard(key, step)
        self.table.sort_by_figure()
        return header, started

    def guard(self, key, step):
        mark = len(self.table.rows)
        try:
            step()
        except Exception as e:  # noqa: BLE001 - a figure that cannot be measured is reported
            note(f"figure {key} failed: {type(e).__name__}: {e}")
            del self.table.rows[mark:]
            self.table.row(f"{key} (failed)", f"error: {type(e).__name__}: {str(e)[:120]}", "measure it", False)

    def phase_calls(self):
        note("4 calls per invocation and per poll (Count 1, 10, 25, 100) and 6 throttled poll, side by side")
        seconds, scs = self.fig4_scenarios()
        thr = self.fig6_scenario()
        before = len(self.emulator.calls())
        try:
            jobs = [(f"4 Count {sc.count}", self.fig4_run, sc) for sc in scs]
            jobs.append(("6", self.fig6_run, thr))
            errors = self.run_parallel(jobs)
        finally:
            for sc in scs + [thr]:
                sc.close()
        mismatches, unattributed, total = self.crosscheck(before, scs + [thr])
        if any(k.startswith("4") for k in errors):
            raise RuntimeError("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.fig4_report(seconds, scs)
        if mismatches or unattributed:
            self.table.sub(f"emulator log differs ({total} calls): "
                           + "; ".join(mismatches)[:150] + (f"; {unattributed} unattributed" if unattributed else ""))
        else:
            self.table.detail(f"4/6 the proxies' counts agree with the emulator's call log ({total} calls, diff before/after)")
        if "6" in errors:
            self.table.row("6 DescribeTasks throttled x50, PollInterval 1", f"error: {errors['6'][:100]}",
                           "<= 1 s (PollInterval)", False)
        else:
            self.fig6_report(thr)

    def phase_lag(self):
        note("5 detection lag: tasks of " + ("5 and 20 s" if self.quick else "5, 20 and 60 s")
             + ", PollInterval 15 (default) and 1, side by side")
        scs = self.fig5_scenarios()
        try:
            errors = self.run_parallel([(sc.tag, self.fig5_run, sc) for sc in scs])
        finally:
            for sc in scs:
                sc.close()
        if errors:
            raise RuntimeError("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.fig5_report(scs)


def body_text(call):
    body = call.get("body")
    return body if isinstance(body, str) else json.dumps(body)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def newest_source_after(mtime):
    """A source file of the handler changed after `mtime`, if any (its path)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates = ["Cargo.toml", "Cargo.lock", "schema.json"]
    for base in ["src", "crates"]:
        for dirpath, dirnames, filenames in os.walk(os.path.join(root, base)):
            dirnames[:] = [d for d in dirnames if d not in ("target", "tests", "benches")]
            for name in filenames:
                if name.endswith(".rs") or name in ("Cargo.toml", "schema.json"):
                    candidates.append(os.path.relpath(os.path.join(dirpath, name), root))
    newest = None
    for rel in candidates:
        path = os.path.join(root, rel)
        if os.path.exists(path) and os.path.getmtime(path) > mtime + 1:
            if newest is None or os.path.getmtime(path) > os.path.getmtime(os.path.join(root, newest)):
                newest = rel
    return newest


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", required=True)
    parser.add_argument("--label", required=True)
    parser.add_argument("--emulator-url", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--zip-binary", help="the dist-profile binary to zip (figure 7)")
    parser.add_argument("--init-runs", type=int, default=25)
    parser.add_argument("--python", default=sys.executable, help="the python of the boto3 comparison")
    parser.add_argument("--out-dir", default=".tmp/bench")
    parser.add_argument("--only", help="figures to run, e.g. 1,3 (4 includes 6); for trying the bench out")
    args = parser.parse_args()
    if args.init_runs < 20:
        parser.error("--init-runs: at least 20")

    bench = Bench(args)
    header, started = bench.run()
    met, judged = bench.table.goals()
    summary = f"summary: {met} of {judged} goals met"
    unmeasured = [r for r in bench.table.rows if r[3] == "n/a"]
    if unmeasured:
        summary += f", {len(unmeasured)} n/a"
    if args.label != "before":
        other = os.path.join(args.out_dir, "before.txt")
        if os.path.exists(other):
            with open(other, encoding="utf-8") as f:
                previous = [line for line in f if line.startswith("summary:")]
            if previous:
                summary += f" (before: {previous[-1].strip()[len('summary: '):]})"
    took = now() - started
    details = os.path.join(args.out_dir, f"{args.label}-details.txt")
    with open(details, "w", encoding="utf-8") as f:
        f.write(header + "\n" + "\n".join(bench.table.details) + "\n")
    text = "\n".join([header, bench.table.render(), summary,
                      f"(bench took {took / 60:.1f} min; per-call details: {details})"]) + "\n"
    out = os.path.join(args.out_dir, f"{args.label}.txt")
    with open(out, "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="", flush=True)
    note(f"written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
