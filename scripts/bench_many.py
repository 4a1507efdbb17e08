"""Figure 8 of the bench, "many at once": the real handler binary, K TaskRuns (or
ServiceRestarts) at once against the emulator with AWS's token buckets on, one handler process
per resource with its own Lambda Runtime API and its own timing proxy (as Lambda gives each its
own sandbox). Run by scripts/bench.py; scripts/bench.md says what is measured and how.

Everything here runs on one asyncio loop (hundreds of sandboxes in one Python process): the
Runtime APIs, the proxies (HTTP-aware: they see each AWS call whole, can answer it themselves
with a ThrottlingException, and read the RunTask / UpdateService answers for the times the
tasks and deployments started), and the CloudFormation side that plays each operation to its
end. The harness breaking (a handler process that dies, the emulator that stops) raises
HarnessError; figures that miss their goals are only reported.
"""
from __future__ import annotations

import asyncio
import collections
import datetime
import json
import math
import os
import random
import resource
import statistics
import threading
import time
import urllib.request
import uuid

from cfnkit.driver import Operation
from cfnkit.runtime_api import (INIT_ERROR_PATH, NEXT_PATH, RESULT_PATH, answer_of, function_arn,
                                invocation_headers)

TASK_SECONDS = 20.0
DEPLOY_SECONDS = 20.0
INVOCATION_LIMIT = 60.0  # the Registry's limit; Lambda-Runtime-Deadline-Ms says so
BUCKETS = {"enabled": True, "scale": 1.0, "background": 0.25, "reset": True}
# bucket of each API (emulator/buckets.py), to set the proxies' counts beside the emulator's
BUCKET_OF = {
    "DescribeTasks": "ecs-cluster-read", "ListTasks": "ecs-cluster-read",
    "DescribeContainerInstances": "ecs-cluster-read", "ListContainerInstances": "ecs-cluster-read",
    "ListAttributes": "ecs-cluster-read",
    "RunTask": "ecs-cluster-modify", "StartTask": "ecs-cluster-modify", "StopTask": "ecs-cluster-modify",
    "DescribeTaskDefinition": "ecs-task-definition-read",
    "DescribeServices": "ecs-service-read", "ListServices": "ecs-service-read",
    "UpdateService": "ecs-service-modify", "CreateService": "ecs-service-modify",
    "DeleteService": "ecs-service-modify",
    "TagResource": "ecs-tag-modify", "UntagResource": "ecs-tag-modify",
    "ssm:GetParameter": "ssm-get-parameter", "ssm:GetParameters": "ssm-get-parameter",
    "ssm:GetParametersByPath": "ssm-get-parameter", "ssm:PutParameter": "ssm-put-parameter",
}
THROTTLE_JSON = b'{"__type":"ThrottlingException","message":"Rate exceeded"}'


class HarnessError(RuntimeError):
    """The bench itself broke: not a figure, a reason to stop with a non-zero exit."""


# --------------------------------------------------------------------------- HTTP bits


def parse_head(head):
    """(first line, {lower-case header: value}) of an HTTP head ending in CRLF CRLF."""
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, _, value = line.partition(":")
            headers[key.strip().lower()] = value.strip()
    return lines[0], headers


async def read_body(reader, headers, status=None):
    """The body exactly as sent (chunk framing kept) and whether the connection ends with it."""
    if status is not None and (100 <= status < 200 or status in (204, 304)):
        return b"", False
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raw = []
        while True:
            line = await reader.readuntil(b"\r\n")
            raw.append(line)
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:
                    trailer = await reader.readuntil(b"\r\n")
                    raw.append(trailer)
                    if trailer == b"\r\n":
                        return b"".join(raw), False
            raw.append(await reader.readexactly(size + 2))
    if "content-length" in headers:
        return await reader.readexactly(int(headers["content-length"])), False
    if status is None:
        return b"", False  # a request without a body
    return await reader.read(), True  # an answer that runs to the end of the connection


def dechunk(raw):
    out, pos = [], 0
    while True:
        end = raw.index(b"\r\n", pos)
        size = int(raw[pos:end].split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return b"".join(out)
        out.append(raw[end + 2:end + 2 + size])
        pos = end + 2 + size + 2


def http_response(status, reason, body, headers=()):
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def throttle_answer(json_protocol):
    """AWS's answer to a throttled call, in the call's protocol (as the emulator renders it)."""
    rid = str(uuid.uuid4())
    if json_protocol:
        return http_response(400, "Bad Request", THROTTLE_JSON, [
            ("Content-Type", "application/x-amz-json-1.1"), ("x-amzn-RequestId", rid),
            ("x-amzn-errortype", "ThrottlingException")])
    xml = (f"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded"
           f"</Message></Error><RequestId>{rid}</RequestId></ErrorResponse>").encode()
    return http_response(400, "Bad Request", xml, [("Content-Type", "text/xml"), ("x-amzn-RequestId", rid),
                                                   ("x-amzn-errortype", "Throttling")])


def epoch(value):
    """An AWS JSON timestamp (epoch seconds, or an ISO string) as epoch seconds, or None."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            stamp = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:  # moto's naive datetimes are UTC
            stamp = stamp.replace(tzinfo=datetime.timezone.utc)
        return stamp.timestamp()
    return None


def pct(values, q):
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(0, math.ceil(q / 100 * len(ordered)) - 1)
    return ordered[rank]


# --------------------------------------------------------------------------- a sandbox


class Invocation:
    def __init__(self, payload, op):
        self.request_id = str(uuid.uuid4())
        self.payload = payload
        self.op = op
        self.future = asyncio.get_running_loop().create_future()
        self.t_queued = time.time()
        self.t_sent = None
        self.sent = asyncio.Event()
        self.t_answered = None
        self.body = b""
        self.error = None
        self.timed_out = False


class Sandbox:
    """One handler process behind its own Lambda Runtime API and its own timing proxy."""

    def __init__(self, run, name, binary, function_name, seed):
        self.run = run
        self.name = name
        self.binary = os.path.abspath(binary)
        self.function_name = function_name
        self.rng = random.Random(seed)
        self.calls = []
        self.op = None  # (operation, invocation index) the calls now belong to
        self.queue = asyncio.Queue()
        self.current = None
        self.process = None
        self.expected_exit = False
        self.ready = asyncio.Event()
        self.conn_tasks = set()
        self.starts = 0
        self.init_error = None
        self.hwm_kib = 0

    async def start(self):
        self.runtime = await asyncio.start_server(self._runtime_conn, "127.0.0.1", 0, backlog=64)
        self.runtime_port = self.runtime.sockets[0].getsockname()[1]
        self.proxy = await asyncio.start_server(self._proxy_conn, "127.0.0.1", 0, backlog=64)
        self.proxy_port = self.proxy.sockets[0].getsockname()[1]
        await self.spawn()

    async def spawn(self):
        self.ready.clear()
        self.expected_exit = False
        self.starts += 1
        env = self.run.section.core.lambda_env(self.binary, self.runtime_port,
                                                f"http://127.0.0.1:{self.proxy_port}", self.function_name)
        log = self.run.section.handler_log
        self.process = await asyncio.create_subprocess_exec(
            self.binary, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log)
        self.run.section.core.register_pid(self.process.pid, self.binary)
        asyncio.get_running_loop().create_task(self._watch(self.process))

    async def _watch(self, process):
        code = await process.wait()
        if process is self.process and not self.expected_exit:
            self.run.section.fail(f"{self.name}: the handler process (pid {process.pid}) exited with "
                                  f"{code}" + (f" (init error: {self.init_error})" if self.init_error else ""))

    async def wait_ready(self, timeout=30.0):
        try:
            await asyncio.wait_for(self.ready.wait(), timeout)
        except asyncio.TimeoutError:
            raise HarnessError(f"{self.name}: the handler process did not ask for an invocation within "
                               f"{timeout:.0f} s") from None

    async def kill(self):
        """Ends the process as Lambda ends a sandbox (a timed-out invocation, or the end)."""
        process, self.expected_exit = self.process, True
        if process is not None and process.returncode is None:
            try:
                process.kill()
            except ProcessLookupError:
                pass
            await process.wait()
        for task in list(self.conn_tasks):
            task.cancel()

    async def close(self):
        await self.kill()
        for server in (getattr(self, "runtime", None), getattr(self, "proxy", None)):
            if server is not None:
                server.close()

    def sample_memory(self):
        process = self.process
        if process is None or process.returncode is not None:
            return 0, 0
        rss = anon = 0
        try:
            with open(f"/proc/{process.pid}/status", encoding="ascii") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        self.hwm_kib = max(self.hwm_kib, int(line.split()[1]))
                    elif line.startswith("VmRSS:"):
                        rss = int(line.split()[1])
                    elif line.startswith("RssAnon:"):
                        anon = int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return rss, anon

    # -- invoking, as Lambda does for CloudFormation

    async def invoke(self, event, op):
        if self.process is None or self.process.returncode is not None:
            await self.spawn()
        inv = Invocation(json.dumps(event).encode(), op)
        self.op = op
        await self.queue.put(inv)
        try:
            # The deadline counts from the event handed over; the queue wait is ours, not the handler's.
            await asyncio.wait_for(inv.sent.wait(), 30.0)
        except asyncio.TimeoutError:
            raise HarnessError(f"{self.name}: the handler process did not take an event for 30 s") from None
        try:
            remaining = inv.t_sent + INVOCATION_LIMIT - time.time()
            await asyncio.wait_for(asyncio.shield(inv.future), max(0.0, remaining))
        except asyncio.TimeoutError:
            # Lambda ends the invocation at its deadline and the sandbox with it.
            inv.timed_out = True
            inv.t_answered = time.time()
            await self.kill()
            self.process = None
        return inv

    async def _runtime_conn(self, reader, writer):
        task = asyncio.current_task()
        self.conn_tasks.add(task)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                line, headers = parse_head(head)
                method, _, rest = line.partition(" ")
                path = rest.split(" ", 1)[0].split("?", 1)[0]
                body, _ = await read_body(reader, headers)
                if method == "GET" and path == NEXT_PATH:
                    self.ready.set()
                    inv = await self.queue.get()
                    self.current = inv
                    deadline_ms = int((time.time() + INVOCATION_LIMIT) * 1000)
                    arn = function_arn(self.run.section.core.REGION, self.run.account, self.function_name)
                    hdrs = [("Content-Type", "application/json"),
                            *invocation_headers(inv.request_id, deadline_ms, arn).items()]
                    writer.write(http_response(200, "OK", inv.payload, hdrs))
                    await writer.drain()
                    inv.t_sent = time.time()
                    inv.sent.set()
                    continue
                match = RESULT_PATH.match(path) if method == "POST" else None
                if match:
                    inv = self.current
                    if inv is not None and inv.request_id == match.group(1) and not inv.future.done():
                        inv.t_answered = time.time()
                        inv.body = body
                        if match.group(2) == "error":
                            inv.error = headers.get("lambda-runtime-function-error-type") or "Unhandled"
                        self.current = None
                        inv.future.set_result(True)
                        writer.write(http_response(202, "Accepted", b'{"status":"OK"}'))
                    else:
                        writer.write(http_response(400, "Bad Request", b'{"errorType":"InvalidRequestID"}'))
                elif method == "POST" and path == INIT_ERROR_PATH:
                    self.init_error = body.decode("utf-8", "replace")[:300]
                    writer.write(http_response(202, "Accepted", b'{"status":"OK"}'))
                else:
                    writer.write(http_response(404, "Not Found", b'{"message":"not found"}'))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            self.conn_tasks.discard(task)
            writer.close()

    # -- the timing proxy

    async def _proxy_conn(self, reader, writer):
        task = asyncio.current_task()
        self.conn_tasks.add(task)
        upstream = None
        chance = self.run.throttle_chance
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except asyncio.IncompleteReadError:
                    break
                _, headers = parse_head(head)
                body, _ = await read_body(reader, headers)
                call = {"api": self.run.section.core.api_name(head), "t0": time.time(), "t1": None,
                        "status": None, "error": None, "injected": False, "op": self.op}
                self.calls.append(call)
                if chance and self.rng.random() < chance:
                    writer.write(throttle_answer("x-amz-target" in headers))
                    await writer.drain()
                    call.update(t1=time.time(), status=400, error="ThrottlingException", injected=True)
                    continue
                if self.run.account != self.run.section.core.ACCOUNT:
                    # the run's own account (and so its own token buckets), as moto's server knows it
                    head = head[:-2] + f"X-Moto-Account-Id: {self.run.account}\r\n\r\n".encode()
                for attempt in (1, 2):
                    if upstream is None:
                        try:
                            upstream = await asyncio.open_connection(*self.run.section.upstream)
                        except OSError as e:
                            self.run.section.fail(f"{self.name}: the emulator refused a connection ({e})")
                            raise
                    up_r, up_w = upstream
                    try:
                        up_w.write(head + body)
                        await up_w.drain()
                        rhead = await up_r.readuntil(b"\r\n\r\n")
                        break
                    except (asyncio.IncompleteReadError, ConnectionError) as e:
                        # a kept-alive connection the emulator had closed: once more on a new one
                        up_w.close()
                        upstream = None
                        if attempt == 2 or (isinstance(e, asyncio.IncompleteReadError) and e.partial):
                            self.run.upstream_errors += 1
                            raise
                call["t1"] = time.time()
                status_line, rheaders = parse_head(rhead)
                status = int(status_line.split(" ")[1]) if status_line.startswith("HTTP/") else 0
                rbody, ends = await read_body(up_r, rheaders, status)
                writer.write(rhead + rbody)
                await writer.drain()
                call["status"] = status
                if status >= 400:
                    call["error"] = (rheaders.get("x-amzn-errortype") or "").split(":")[0] or f"HTTP {status}"
                elif call["api"] in ("RunTask", "StartTask", "UpdateService"):
                    call["answer"] = self._started(call["api"], rbody, rheaders)
                if ends or rheaders.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, ConnectionError, OSError, asyncio.CancelledError):
            pass
        finally:
            self.conn_tasks.discard(task)
            writer.close()
            if upstream is not None:
                upstream[1].close()

    @staticmethod
    def _started(api, raw, headers):
        """What a RunTask/StartTask answer started (task ARN -> createdAt) or an UpdateService
        answer's PRIMARY deployment (id -> createdAt)."""
        try:
            if "chunked" in headers.get("transfer-encoding", "").lower():
                raw = dechunk(raw)
            data = json.loads(raw or b"{}")
        except ValueError:
            return {}
        if api == "UpdateService":
            deps = (data.get("service") or {}).get("deployments") or []
            return {d.get("id"): epoch(d.get("createdAt")) for d in deps if d.get("status") == "PRIMARY"}
        return {t.get("taskArn"): epoch(t.get("createdAt")) for t in data.get("tasks") or []}


# --------------------------------------------------------------------------- one run of K


class Resource:
    """One TaskRun or ServiceRestart and its operations."""

    def __init__(self, index, sandbox, props):
        self.index = index
        self.sandbox = sandbox
        self.props = props
        self.ops = {}  # "CREATE"/"DELETE" -> {"invocations": [...], "end": ..., "code": ...}
        self.logical_id = f"Many{index:04d}"


class Run:
    """K resources of one kind, one handler binary, created within one second."""

    def __init__(self, section, subject, kind, k, throttle_chance, tag, account):
        self.section = section
        self.subject = subject
        self.account = account
        self.stack = section.core.STACK.replace(f":{section.core.ACCOUNT}:", f":{self.account}:")
        self.kind = kind  # "TaskRun" or "ServiceRestart"
        self.k = k
        self.throttle_chance = throttle_chance
        self.tag = tag
        self.name = f"m{tag}{subject.letter}{section.run_tag}"
        self.resources = []
        self.upstream_errors = 0

    @property
    def binary(self):
        return self.subject.binary if self.kind == "TaskRun" else self.subject.sr_binary

    # -- setup in the emulator (buckets still off)

    def setup(self):
        """Its cluster, task definition family (20 s tasks) and services, in its account."""
        emu = self.section.emulator
        ecs = ecs_client(emu, self.account)
        cluster = f"bench-{self.name}"
        ecs.create_cluster(clusterName=cluster)
        ecs.register_task_definition(
            family=cluster,
            containerDefinitions=[
                {"name": "app", "image": "public.ecr.aws/docker/library/busybox:1.36",
                 "memory": 128, "essential": True, "command": ["sh", "-c", "true"]},
            ],
        )
        emu.control("outcomes", {"family": cluster, "default": {"kind": "exit", "afterSeconds": TASK_SECONDS}})
        self.cluster = cluster
        if self.kind == "ServiceRestart":
            self.services = []
            for i in range(self.k):
                service = f"{cluster}-s{i:04d}"
                ecs.create_service(cluster=cluster, serviceName=service, taskDefinition=cluster, desiredCount=1)
                emu.control("deployment-outcomes", {"service": service, "default":
                                                    {"kind": "completed", "afterSeconds": DEPLOY_SECONDS}})
                self.services.append(service)

    def properties(self, index):
        if self.kind == "TaskRun":
            return {"Cluster": self.cluster, "TaskDefinition": self.cluster, "Count": 1}
        return {"Cluster": self.cluster, "Service": self.services[index]}

    # -- the run

    async def play(self, res, action, props, cap):
        """One operation as CloudFormation plays it: re-invoked with the callbackContext after
        callbackDelaySeconds until it is not IN_PROGRESS; returns its record."""
        core = self.section.core
        operation = Operation(action, f"Org::ECS::{self.kind}", res.logical_id, props,
                              stack_id=self.stack, credentials=core.CREDS, account=self.account,
                              region=core.REGION)
        record = {"invocations": [], "status": None, "code": None, "message": None, "model": None,
                  "t_end": None, "timed_out": None}
        res.ops[action] = record
        started = time.time()
        while True:
            inv = await res.sandbox.invoke(operation.request(), (action, len(record["invocations"])))
            record["invocations"].append(inv)
            if inv.timed_out:
                record.update(status="TIMED_OUT", timed_out="invocation past 60 s", t_end=inv.t_answered)
                return record
            answer = answer_of(inv.body)
            inv.answer_status = answer.get("status")
            inv.delay = answer.get("callbackDelaySeconds")
            if answer.get("resourceModel") is not None:
                record["model"] = answer["resourceModel"]
            delay = operation.follow(answer)
            if delay is None:
                record.update(status=inv.answer_status or "ERROR", t_end=inv.t_answered,
                              code=answer.get("errorCode") or answer.get("errorType"),
                              message=(answer.get("message") or answer.get("errorMessage") or "")[:200])
                return record
            if time.time() - started > cap:
                record.update(status="TIMED_OUT", timed_out=f"still IN_PROGRESS after {cap:.0f} s",
                              t_end=inv.t_answered)
                return record
            await asyncio.sleep(delay)

    async def lifecycle(self, res, start_at, cap):
        await asyncio.sleep(max(0.0, start_at - time.time()))
        create = await self.play(res, "CREATE", res.props, cap)
        model = create["model"] or {}
        if model.get("Id"):
            # CloudFormation deletes what it has an identifier of: after the CREATE, or in the
            # rollback of a failed one.
            await self.play(res, "DELETE", model, cap)

    async def prepare(self):
        """Its K handler processes, each waiting at GET /next."""
        t_setup = time.time()
        for i in range(self.k):
            # the seed leaves the handler out: the previous and the current one meet the same dice
            sb = Sandbox(self, f"{self.name}-{i:04d}", self.binary, self.kind,
                         seed=f"{self.kind}-{self.k}-{self.tag}-{i}")
            self.resources.append(Resource(i, sb, self.properties(i)))
        await asyncio.gather(*(r.sandbox.start() for r in self.resources))
        await asyncio.gather(*(r.sandbox.wait_ready() for r in self.resources))
        self.spawn_seconds = time.time() - t_setup

    async def go(self, t_start, cap):
        """The K CREATEs, created within one second from t_start (evenly spread), each played
        to its end and then deleted."""
        self.t_start = t_start
        jobs = [self.lifecycle(r, t_start + i / self.k, cap) for i, r in enumerate(self.resources)]
        sampler = asyncio.get_running_loop().create_task(self._sample())
        try:
            await asyncio.gather(*jobs)
        finally:
            sampler.cancel()
        self.t_done = time.time()

    async def _sample(self):
        self.rss_peak_kib = self.anon_peak_kib = 0
        self.loop_lag = []
        last_mem = 0.0
        while True:
            t0 = time.monotonic()
            await asyncio.sleep(0.1)
            self.loop_lag.append(time.monotonic() - t0 - 0.1)
            if time.monotonic() - last_mem >= 1.0:
                last_mem = time.monotonic()
                samples = [r.sandbox.sample_memory() for r in self.resources]
                anon = sum(a for _, a in samples)
                if anon > self.anon_peak_kib:
                    self.anon_peak_kib = anon
                    self.rss_peak_kib = sum(r for r, _ in samples)

    async def close(self):
        for r in self.resources:
            r.sandbox.sample_memory()
        await asyncio.gather(*(r.sandbox.close() for r in self.resources), return_exceptions=True)

    # -- what the emulator saw

    def collect(self):
        emu = self.section.emulator
        buckets = emu.request("GET", "buckets")
        mine = {key: b for key, b in (buckets.get("buckets") or {}).items() if key.startswith(f"{self.account}/")}
        self.buckets = dict(buckets, buckets=mine)
        self.emu_tasks = [t for t in emu.request("GET", "tasks") if t.get("clusterArn", "").endswith(f"/{self.cluster}")]


# --------------------------------------------------------------------------- CPU


def cpu_sample(emulator_pid):
    with open("/proc/stat", encoding="ascii") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    emu = None
    if emulator_pid:
        try:
            with open(f"/proc/{emulator_pid}/stat", encoding="ascii") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            emu = int(parts[11]) + int(parts[12])
        except (OSError, IndexError, ValueError):
            emu = None
    own = os.times()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"t": time.monotonic(), "total": sum(fields), "idle": idle, "emu": emu,
            "own": own.user + own.system, "children": children.ru_utime + children.ru_stime}


def cpu_delta(a, b):
    tick = os.sysconf("SC_CLK_TCK")
    wall = b["t"] - a["t"]
    total = b["total"] - a["total"]
    out = {"wall": wall, "busy": 1.0 - (b["idle"] - a["idle"]) / total if total else float("nan"),
           "harness": (b["own"] - a["own"]) / wall if wall else float("nan"),
           "handlers": (b["children"] - a["children"]) / wall if wall else float("nan")}
    out["emulator"] = ((b["emu"] - a["emu"]) / tick / wall) if a["emu"] is not None and b["emu"] is not None \
        else float("nan")
    return out


# --------------------------------------------------------------------------- figures of a run


def analyse(run):
    """The figures of one run (a dict), from the proxies, the invocations and the emulator."""
    kind = run.kind
    out = {"k": run.k, "kind": kind, "chance": run.throttle_chance}
    create_status = collections.Counter()
    failed_codes = collections.Counter()
    timed_out = 0
    lags, longest, timeouts = [], 0.0, 0
    per = collections.defaultdict(list)
    puts_per_create = []
    written_per_create = []
    throttled_proxy = collections.Counter()
    injected = collections.Counter()
    latencies = []
    delete_status = collections.Counter()
    task_owner = {}
    starts = {}
    for res in run.resources:
        create = res.ops.get("CREATE") or {}
        delete = res.ops.get("DELETE")
        st = create.get("status")
        if st == "SUCCESS":
            create_status["completed"] += 1
        elif st == "TIMED_OUT":
            timed_out += 1
        else:
            create_status["failed"] += 1
            failed_codes[create.get("code") or str(st)] += 1
        if delete is not None:
            delete_status["SUCCESS" if delete["status"] == "SUCCESS" else
                          f"{delete['status']} {delete.get('code') or ''}".strip()] += 1
        else:
            delete_status["not deleted (no Id)"] += 1
        for op in (create, delete or {}):
            for inv in op.get("invocations", []):
                if inv.timed_out:
                    timeouts += 1
                elif inv.t_sent is not None:
                    longest = max(longest, inv.t_answered - inv.t_sent)
        calls = res.sandbox.calls
        counts = collections.Counter(c["api"] for c in calls)
        if kind == "TaskRun":
            per["DescribeTasks"].append(counts.get("DescribeTasks", 0))
            per["other ECS"].append(sum(v for a, v in counts.items() if ":" not in a and a != "DescribeTasks"))
        else:
            per["DescribeServices"].append(counts.get("DescribeServices", 0))
            per["other ECS"].append(sum(v for a, v in counts.items() if ":" not in a and a != "DescribeServices"))
        per["ssm:GetParameter"].append(counts.get("ssm:GetParameter", 0))
        per["other"].append(sum(v for a, v in counts.items() if ":" in a and a not in ("ssm:GetParameter",
                                                                                          "ssm:PutParameter")))
        puts = [c for c in calls if c["api"] == "ssm:PutParameter" and c["op"] and c["op"][0] == "CREATE"]
        puts_per_create.append(len(puts))
        written_per_create.append(sum(1 for c in puts if c["status"] == 200))
        per["ssm:PutParameter"].append(counts.get("ssm:PutParameter", 0))
        for c in calls:
            if c["error"] in ("ThrottlingException", "Throttling"):
                (injected if c["injected"] else throttled_proxy)[c["api"]] += 1
            elif c["t1"] is not None and not c["injected"]:
                latencies.append(c["t1"] - c["t0"])
            for key, created in (c.get("answer") or {}).items():
                if key not in starts:
                    starts[key] = created if created is not None else c["t1"]
                    task_owner[key] = res
        # detection lag: the task stopped (or the deployment completed) -> SUCCESS answered
        if st == "SUCCESS":
            mine = [(starts[key]) for key in starts if task_owner.get(key) is res]
            if mine:
                length = TASK_SECONDS if kind == "TaskRun" else DEPLOY_SECONDS
                lags.append(create["t_end"] - (max(mine) + length))
    out["completed"] = create_status["completed"]
    out["failed"] = create_status["failed"]
    out["failed_codes"] = dict(failed_codes)
    out["timed_out"] = timed_out
    out["timed_out_invocations"] = sum(1 for r in run.resources if (r.ops.get("CREATE") or {}).get("timed_out")
                                       == "invocation past 60 s")
    out["cap"] = run.section.cap
    out["deletes"] = dict(delete_status)
    out["lags"] = lags
    out["longest"] = longest
    out["invocation_timeouts"] = timeouts
    out["per"] = {k: v for k, v in per.items()}
    out["puts_per_create"] = puts_per_create
    out["written_per_create"] = written_per_create
    out["throttled_proxy"] = dict(throttled_proxy)
    out["injected"] = dict(injected)
    out["latency"] = latencies
    per_second = collections.Counter(int(c["t0"]) for r in run.resources for c in r.sandbox.calls)
    out["peak_rate"] = max(per_second.values(), default=0)
    out["calls_total"] = sum(len(r.sandbox.calls) for r in run.resources)
    # the emulator's token buckets
    bucket_throttled = {}
    bucket_allowed = {}
    for full, b in (run.buckets.get("buckets") or {}).items():
        name = full.rsplit("/", 1)[1]
        bucket_throttled[name] = bucket_throttled.get(name, 0) + b["throttled"]
        bucket_allowed[name] = bucket_allowed.get(name, 0) + b["allowed"]
    out["bucket_throttled"] = bucket_throttled
    out["bucket_allowed"] = bucket_allowed
    by_bucket_proxy = collections.Counter()
    for api, n in throttled_proxy.items():
        by_bucket_proxy[BUCKET_OF.get(api, api)] += n
    out["bucket_mismatch"] = {b: (by_bucket_proxy.get(b, 0), bucket_throttled.get(b, 0))
                              for b in set(by_bucket_proxy) | set(bucket_throttled)
                              if by_bucket_proxy.get(b, 0) != bucket_throttled.get(b, 0)}
    out["log_diff"] = run.log_diff
    # tasks the DELETEs left running: not stopped, and due to run on past their TaskRun's DELETE
    left = []
    if kind == "TaskRun":
        end_all = max((r.ops["DELETE"]["t_end"] for r in run.resources if r.ops.get("DELETE")
                       and r.ops["DELETE"]["t_end"]), default=run.t_done)
        for t in run.emu_tasks:
            if t.get("stopCode") is not None or t.get("lastStatus") in ("STOPPED", "DELETED"):
                continue
            arn = t["taskArn"]
            owner = task_owner.get(arn)
            created = starts.get(arn)
            ref = owner.ops["DELETE"]["t_end"] if owner is not None and owner.ops.get("DELETE") else end_all
            due = (created + TASK_SECONDS) if created is not None else float("inf")
            if due > (ref or run.t_done):
                left.append(arn)
    out["left_running"] = len(left)
    timeline = []
    for res in run.resources:
        parts = []
        for action in ("CREATE", "DELETE"):
            op = res.ops.get(action)
            if not op or not op["invocations"]:
                continue
            first = op["invocations"][0]
            took = (op["t_end"] or run.t_done) - first.t_queued
            delays = [getattr(inv, "delay", None) for inv in op["invocations"][:-1]]
            parts.append(f"{action} {op['status']}{' ' + str(op['code']) if op['code'] else ''} "
                         f"{took:.0f} s {len(op['invocations'])} inv delays {delays}")
        counts = collections.Counter(c["api"] + ("!" if c["error"] else "") for c in res.sandbox.calls)
        timeline.append(f"#{res.index}: " + "; ".join(parts) + " | calls " + ", ".join(
            f"{a} {n}" for a, n in sorted(counts.items())))
    out["timeline"] = timeline
    durations = collections.defaultdict(list)
    for res in run.resources:
        for action in ("CREATE", "DELETE"):
            op = res.ops.get(action)
            if op and op["invocations"] and op["t_end"]:
                durations[action].append(op["t_end"] - op["invocations"][0].t_queued)
    out["durations"] = dict(durations)
    out["tasks_started"] = len(run.emu_tasks)
    out["cpu"] = run.cpu
    out["rss_peak_mib"] = run.rss_peak_kib / 1024
    out["anon_peak_mib"] = run.anon_peak_kib / 1024
    out["hwm_max_mib"] = max((r.sandbox.hwm_kib for r in run.resources), default=0) / 1024
    out["loop_lag_p99"] = pct(run.loop_lag, 99)
    out["spawn_seconds"] = run.spawn_seconds
    out["wall"] = run.t_done - run.t_start
    out["starts"] = sum(r.sandbox.starts for r in run.resources)
    out["upstream_errors"] = run.upstream_errors
    return out


# --------------------------------------------------------------------------- the section


class Section:
    """Runs the K list for each subject and adds the rows to each subject's table."""

    def __init__(self, core, bench, subjects, plan, cap, emulator_pid):
        self.core = core
        self.emulator = bench.emulator
        self.upstream = (bench.emulator.host, bench.emulator.port)
        self.subjects = subjects
        self.plan = plan  # [(kind, K, chance, tag)]
        self.cap = cap
        self.emulator_pid = emulator_pid
        self.handler_log = bench.handler_log
        self.run_tag = bench.run_tag
        self.failure = None
        self.loop = None
        self.failed = None

    def fail(self, reason):
        """The harness broke (from any thread)."""
        if self.failure is None:
            self.failure = reason
        if self.loop is not None and self.failed is not None:
            self.loop.call_soon_threadsafe(self.failed.set)

    def _watchdog(self, stop):
        misses = 0
        while not stop.wait(2.0):
            if self.emulator_pid and not os.path.exists(f"/proc/{self.emulator_pid}"):
                self.fail(f"the emulator (pid {self.emulator_pid}) is gone")
                return
            try:
                with urllib.request.urlopen(f"{self.emulator.url}/_taskrun/health", timeout=20) as resp:
                    resp.read()
                misses = 0
            except OSError as e:
                misses += 1
                if misses >= 3:
                    self.fail(f"the emulator stopped answering ({e})")
                    return

    def run_all(self, progress):
        results = {}
        stop = threading.Event()
        watchdog = threading.Thread(target=self._watchdog, args=(stop,), daemon=True)
        watchdog.start()
        try:
            for kind, k, chance, tag in self.plan:
                label = describe(kind, k, chance)
                group = []
                for subject in self.subjects:
                    run = Run(self, subject, kind, k, chance, tag, ACCOUNTS[subject.name])
                    if run.binary:
                        group.append(run)
                    else:
                        results[(tag, subject.name)] = None
                        progress(f"8 {label}: {subject.name} handler: n/a (no binary)")
                if not group:
                    continue
                t0 = time.time()
                who = " and ".join(f"{r.subject.name} (account {r.account})" for r in group)
                progress(f"8 {label}: {who} handler{'s side by side' if len(group) > 1 else ''} ...")
                self.emulator.control("reset", {})
                for run in group:
                    run.setup()
                self.emulator.control("buckets", BUCKETS)
                calls_before = len(self.emulator.calls())
                asyncio.run(self._execute(group))
                for run in group:
                    run.collect()
                self.emulator.control("buckets", {"enabled": False})
                if self.failure:
                    raise HarnessError(self.failure)
                diff = log_diff(self.emulator.calls()[calls_before:], group)
                for run in group:
                    run.log_diff = diff
                    res = results[(tag, run.subject.name)] = analyse(run)
                    res["side_by_side"] = len(group) > 1
                    progress(f"8 {label}: {run.subject.name} handler: {res['completed']}/{k} completed in "
                             f"{res['wall']:.0f} s, {sum(res['throttled_proxy'].values())} calls throttled by "
                             f"the buckets" + (f", {sum(res['injected'].values())} by the proxies"
                                               if res['injected'] else ""))
                cpu = group[0].cpu
                progress(f"8 {label}: done in {time.time() - t0:.0f} s (emulator {cpu['emulator'] * 100:.0f} % "
                         f"of a core, harness {cpu['harness'] * 100:.0f} %, handlers {cpu['handlers'] * 100:.0f} %)")
        except HarnessError:
            raise
        except Exception as e:  # noqa: BLE001 - a bug of the harness is the harness breaking
            raise HarnessError(f"{type(e).__name__}: {e}") from e
        finally:
            stop.set()
            try:
                self.emulator.control("buckets", {"enabled": False})
            except OSError:
                pass
        return results

    async def _execute(self, runs):
        self.loop = asyncio.get_running_loop()
        self.failed = asyncio.Event()
        if self.failure:
            self.failed.set()

        cpu0 = {}

        async def together():
            await asyncio.gather(*(run.prepare() for run in runs))
            cpu0.update(cpu_sample(self.emulator_pid))
            t_start = time.time() + 0.2
            await asyncio.gather(*(run.go(t_start, self.cap) for run in runs))

        main = self.loop.create_task(together())
        watch = self.loop.create_task(self.failed.wait())
        try:
            done, _ = await asyncio.wait({main, watch}, return_when=asyncio.FIRST_COMPLETED)
            if main in done:
                main.result()  # a HarnessError raised inside
            else:
                main.cancel()
                await asyncio.gather(main, return_exceptions=True)
                raise HarnessError(self.failure)
        finally:
            watch.cancel()
            for run in runs:
                for r in run.resources:
                    r.sandbox.sample_memory()
            await asyncio.gather(*(run.close() for run in runs), return_exceptions=True)
            self.loop = None
            if cpu0:  # after the processes were reaped, so that their CPU time counts
                cpu = cpu_delta(cpu0, cpu_sample(self.emulator_pid))
                for run in runs:
                    run.cpu = cpu


# The previous handler runs in an account of its own, beside the current one: its own token
# buckets, as two accounts have in AWS.
ACCOUNTS = {"current": "123456789012", "previous": "210987654321"}


def ecs_client(emulator, account):
    """An ECS client of the emulator acting in `account` (moto's X-Moto-Account-Id)."""
    if account == ACCOUNTS["current"]:
        return emulator.ecs
    import boto3
    from botocore.config import Config
    creds = emulator.ecs._request_signer._credentials  # noqa: SLF001 - the same test credentials
    session = boto3.Session(aws_access_key_id=creds.access_key, aws_secret_access_key=creds.secret_key,
                            region_name=emulator.ecs.meta.region_name)
    client = session.client("ecs", endpoint_url=emulator.url, config=Config(retries={"max_attempts": 2}))

    def add_account(request, **_):
        request.headers["X-Moto-Account-Id"] = account

    client.meta.events.register("before-send.ecs", add_account)
    return client


def log_diff(emu_calls, runs):
    """The emulator's call log against the proxies' (the proxies' own throttles never reach it)."""
    emu_counts = collections.Counter(c["api"] for c in emu_calls)
    prox_counts = collections.Counter(c["api"] for run in runs for r in run.resources for c in r.sandbox.calls
                                      if not c["injected"] and c["status"] is not None)
    return dict((emu_counts - prox_counts) + (prox_counts - emu_counts))


def describe(kind, k, chance):
    text = f"K={k} {kind}s"
    if chance:
        text += f", {chance * 100:.0f} % of calls throttled"
    return text


# --------------------------------------------------------------------------- rows


def rows(table, res):
    """The rows of one run in a subject's table (Table.row / sub / detail of bench.py)."""
    if res is None:
        return
    kind, k = res["kind"], res["k"]
    name = describe(kind, k, res["chance"])
    poll_api = "DescribeTasks" if kind == "TaskRun" else "DescribeServices"
    table.row(f"8 {name}", f"run {res['wall']:.0f} s", "")
    codes = ", ".join(f"{c} {n}" for c, n in sorted(res["failed_codes"].items()))
    table.row("8   completed/failed/timed out",
              f"{res['completed']}/{res['failed']}/{res['timed_out']}" + (f" ({codes})" if codes else ""),
              f"{k}/0/0", res["completed"] == k)
    if res["timed_out"]:
        capped = res["timed_out"] - res["timed_out_invocations"]
        table.sub("timed out: " + ", ".join(filter(None, [
            f"{capped} still IN_PROGRESS after {res['cap']:.0f} s (the bench's cap)" if capped else "",
            f"{res['timed_out_invocations']} with an invocation past 60 s" if res["timed_out_invocations"] else ""])))
    thr, inj = res["throttled_proxy"], res["injected"]
    table.row("8   throttled calls: buckets" + (" + proxy's 20 %" if res["chance"] else ""),
              f"{sum(thr.values())}" + (f" + {sum(inj.values())}" if res["chance"] else "")
              + f" of {res['calls_total']}", "report")
    if thr:
        counted = {b: n for b, n in res["bucket_throttled"].items() if n}
        table.sub("buckets, by API: " + ", ".join(f"{a} {n}" for a, n in sorted(thr.items(), key=lambda kv: -kv[1]))
                  + "; emulator's counters (throttled/allowed): " + ", ".join(
                      f"{b} {n}/{res['bucket_allowed'].get(b, 0)}" for b, n in sorted(counted.items(),
                                                                                   key=lambda kv: -kv[1])))
    if inj:
        table.sub("proxy's 20 %, by API: " + ", ".join(f"{a} {n}" for a, n in sorted(inj.items(), key=lambda kv: -kv[1])))
    if res["bucket_mismatch"]:
        table.sub("the emulator's bucket counters differ from the proxies' (proxies/emulator): " + ", ".join(
            f"{b} {p}/{e}" for b, (p, e) in sorted(res["bucket_mismatch"].items())))
    lags = res["lags"]
    if lags:
        p50, p99 = pct(lags, 50), pct(lags, 99)
        table.row("8   detection lag p50 / p99", f"{p50:.1f} / {p99:.1f} s (n={len(lags)})",
                  "p50 <= 3 s, p99 <= 30 s", p50 <= 3.0 and p99 <= 30.0)
    else:
        table.row("8   detection lag p50 / p99", "n/a (none completed)", "p50 <= 3 s, p99 <= 30 s", False)
    per = res["per"]

    def mm(values):
        return f"{statistics.mean(values):.1f}/{max(values)}" if values else "-"

    table.row(f"8   {poll_api} per {kind}, mean/max", mm(per[poll_api]), "report")
    table.row("8   other ECS calls per " + kind, mm(per["other ECS"]), "report")
    puts, written = res["puts_per_create"], res["written_per_create"]
    table.row("8   ssm:PutParameter per CREATE: written (sent)", f"{mm(written)} ({mm(puts)})", "<= 2 written",
              bool(written) and max(written) <= 2)
    table.row(f"8   ssm:GetParameter per {kind}", mm(per["ssm:GetParameter"]), "report")
    if any(per["other"]):
        table.sub(f"other calls (ssm:DeleteParameter, ...): {mm(per['other'])}")
    dur = res["durations"]
    if dur.get("CREATE"):
        text = f"{pct(dur['CREATE'], 50):.0f}/{max(dur['CREATE']):.0f} s"
        if dur.get("DELETE"):
            text += f", {pct(dur['DELETE'], 50):.0f}/{max(dur['DELETE']):.0f} s"
        table.row("8   CREATE, DELETE took p50/max", text, "report")
    deletes = ", ".join(f"{s} {n}" for s, n in sorted(res["deletes"].items()))
    table.sub(f"DELETEs: {deletes}")
    longest = res["longest"]
    value = f"{longest:.1f} s"
    if res["invocation_timeouts"]:
        value += f", {res['invocation_timeouts']} past 60 s"
    table.row("8   longest invocation", value, "<= 60 s", longest <= 60.0 and not res["invocation_timeouts"])
    if kind == "TaskRun":
        table.row("8   tasks left running after the DELETEs", str(res["left_running"]), "0", res["left_running"] == 0)
    cpu = res["cpu"]
    table.sub(("harness, both handlers side by side: " if res.get("side_by_side") else "harness: ")
              + f"emulator {cpu['emulator'] * 100:.0f} % of a core, bench.py {cpu['harness'] * 100:.0f} %, "
              f"handlers {cpu['handlers'] * 100:.0f} %; the machine's {os.cpu_count()} cores "
              f"{cpu['busy'] * 100:.0f} % busy (with whatever else runs)")
    table.sub(f"emulator answers p50/p99 {pct(res['latency'], 50) * 1000:.0f}/{pct(res['latency'], 99) * 1000:.0f} ms "
              f"(its busiest second: {res['peak_rate']} calls), loop lag p99 {res['loop_lag_p99'] * 1000:.0f} ms; "
              f"handlers' memory at the peak {res['anon_peak_mib']:.0f} MiB private, {res['rss_peak_mib']:.0f} MiB RSS")
    if res["log_diff"]:
        table.sub("the emulator's call log differs from the proxies': " + ", ".join(
            f"{a} {n}" for a, n in sorted(res["log_diff"].items()))[:150])
    table.detail(f"8 {name}: {json.dumps(summary_json(res))}")
    for line in res["timeline"]:
        table.detail(f"8 {name} {line}")


def summary_json(res):
    out = {k: v for k, v in res.items() if k not in ("lags", "latency", "per", "puts_per_create",
                                                     "written_per_create", "timeline", "durations")}
    out["lags"] = [round(v, 2) for v in sorted(res["lags"])]
    out["per"] = {k: collections.Counter(v).most_common() for k, v in res["per"].items()}
    out["puts_per_create"] = collections.Counter(res["puts_per_create"]).most_common()
    out["latency_ms_p50_p99"] = [round(pct(res["latency"], 50) * 1000), round(pct(res["latency"], 99) * 1000)]
    return out
