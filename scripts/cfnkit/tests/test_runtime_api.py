"""cfnkit.runtime_api: a fake handler process (a Python runtime loop) behind a Sandbox, and
scripts/local_lambda.py's Invoke API in front of one."""
import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request

import pytest

from cfnkit.runtime_api import Function, QuietServer, RuntimeAPIHandler, Sandbox, lambda_env

SCRIPTS = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Does what each event says: {"reply": x}, {"fail": x}, {"exit": code}, {"sleep": seconds},
# {"env": [names]}, {"headers": true}; with FAKE_INIT_ERROR set, reports it and exits 2.
FAKE_HANDLER = '''#!{python}
import json, os, sys, time, urllib.request

api = "http://" + os.environ["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime/"

def post(path, body, headers=None):
    request = urllib.request.Request(api + path, data=json.dumps(body).encode(), method="POST",
                                     headers=headers or {{}})
    urllib.request.urlopen(request).read()

if os.environ.get("FAKE_INIT_ERROR"):
    post("init/error", {{"errorType": "Init", "errorMessage": os.environ["FAKE_INIT_ERROR"]}})
    sys.exit(2)
while True:
    with urllib.request.urlopen(api + "invocation/next") as response:
        request_id = response.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = dict(response.headers)
        event = json.loads(response.read())
    if "exit" in event:
        sys.exit(event["exit"])
    time.sleep(event.get("sleep", 0))
    if "fail" in event:
        post(f"invocation/{{request_id}}/error", event["fail"],
             {{"Lambda-Runtime-Function-Error-Type": "Fake"}})
        continue
    answer = {{"reply": event.get("reply"), "pid": os.getpid()}}
    if "env" in event:
        answer["env"] = {{name: os.environ.get(name) for name in event["env"]}}
    if event.get("headers"):
        answer["headers"] = headers
    post(f"invocation/{{request_id}}/response", answer)
'''


@pytest.fixture
def fake_binary(tmp_path):
    path = tmp_path / "bootstrap"
    path.write_text(FAKE_HANDLER.format(python=sys.executable))
    path.chmod(0o755)
    return str(path)


@pytest.fixture
def serve():
    """serve(sandbox): its Runtime API on a free loopback port; stopped after the test."""
    served = []

    def start(sandbox):
        server = QuietServer(("127.0.0.1", 0), RuntimeAPIHandler.serving(sandbox))
        sandbox.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                         daemon=True).start()
        served.append((sandbox, server))
        return sandbox

    yield start
    for sandbox, server in served:
        sandbox.stop()
        server.shutdown()
        server.server_close()


def sandbox_of(binary, env=(), **settings):
    base_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **dict(env)}
    return Sandbox(Function(binary, **settings), base_env=base_env, output=subprocess.DEVNULL)


def invoke(sandbox, event, timeout=20.0):
    return sandbox.invoke(json.dumps(event).encode(), timeout)


def test_an_answer_with_lambda_headers_and_variables(fake_binary, serve):
    sandbox = serve(sandbox_of(fake_binary, deadline_seconds=60.0))
    inv = invoke(sandbox, {"reply": "hi", "headers": True,
                           "env": ["AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_RUNTIME_API", "AWS_REGION", "TZ"]})
    answer = inv.answer()
    assert inv.function_error is None and not inv.timed_out
    assert answer["reply"] == "hi"
    assert answer["env"] == {"AWS_LAMBDA_FUNCTION_NAME": "TaskRun",
                             "AWS_LAMBDA_RUNTIME_API": f"127.0.0.1:{sandbox.port}",
                             "AWS_REGION": "us-east-1", "TZ": ":UTC"}
    headers = answer["headers"]
    assert headers["Lambda-Runtime-Aws-Request-Id"] == inv.request_id
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == \
        "arn:aws:lambda:us-east-1:123456789012:function:TaskRun"
    assert int(headers["Lambda-Runtime-Deadline-Ms"]) == inv.deadline_ms
    assert inv.t_queued <= inv.t_sent <= inv.t_answered
    assert sandbox.first_poll_at > sandbox.t_exec
    again = invoke(sandbox, {"reply": 2}).answer()
    assert again == {"reply": 2, "pid": answer["pid"]} and sandbox.starts == 1


def test_a_function_error(fake_binary, serve):
    sandbox = serve(sandbox_of(fake_binary))
    inv = invoke(sandbox, {"fail": {"errorType": "Boom", "errorMessage": "no"}})
    assert inv.function_error == "Unhandled"
    assert inv.answer() == {"errorType": "Boom", "errorMessage": "no"}


def test_a_process_that_dies_fails_its_invocation_and_the_next_one_gets_a_fresh_one(fake_binary, serve):
    sandbox = serve(sandbox_of(fake_binary))
    first = invoke(sandbox, {"reply": 1}).answer()["pid"]
    inv = invoke(sandbox, {"exit": 3})
    assert inv.function_error == "Unhandled"
    assert inv.answer()["errorType"] == "Runtime.ExitError"
    assert inv.answer()["errorMessage"].endswith("Runtime exited with error: exit status 3")
    assert sandbox.handler_pid() is None
    answer = invoke(sandbox, {"reply": 2}).answer()
    assert answer["pid"] != first and answer["pid"] == sandbox.handler_pid()
    assert sandbox.starts == 2


def test_a_timed_out_invocation_restarts_the_process(fake_binary, serve):
    sandbox = serve(sandbox_of(fake_binary))
    first = invoke(sandbox, {"reply": 1}).answer()["pid"]
    inv = invoke(sandbox, {"sleep": 30}, timeout=0.5)
    assert inv.timed_out and inv.function_error == "Unhandled"
    assert inv.answer()["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.50 seconds" in inv.answer()["errorMessage"]
    assert invoke(sandbox, {"reply": 2}).answer()["pid"] != first


def test_an_init_error_is_told_with_the_exit(fake_binary, serve):
    sandbox = serve(sandbox_of(fake_binary, env={"FAKE_INIT_ERROR": "no config"}))
    inv = sandbox.invoke(b"{}", timeout=10, init_timeout=10)
    assert inv.function_error == "Unhandled"
    message = inv.answer()["errorMessage"]
    assert inv.answer()["errorType"] == "Runtime.ExitError"
    assert message == "Runtime exited before asking for an invocation: Init: no config"
    assert sandbox.init_error == "Init: no config"


def test_lambda_env_keeps_what_the_base_sets():
    env = lambda_env({"AWS_REGION": "eu-west-1", "TZ": "Europe/Paris", "AWS_LAMBDA_MAX_CONCURRENCY": "4"},
                     "/x/bootstrap", 9001, "Fn", region="us-east-1", memory_mb=512)
    assert env["AWS_REGION"] == env["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert env["TZ"] == "Europe/Paris"
    assert "AWS_LAMBDA_MAX_CONCURRENCY" not in env
    assert (env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], env["_HANDLER"], env["LAMBDA_TASK_ROOT"]) == \
        ("512", "bootstrap", "/x")
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/Fn"


def test_local_lambda_serves_the_invoke_api(fake_binary):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    lam = subprocess.Popen([sys.executable, os.path.join(SCRIPTS, "local_lambda.py"), "--binary", fake_binary,
                            "--port", "0", "--parent-pid", str(os.getpid())],
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)
    try:
        line = lam.stdout.readline()
        assert line.startswith("READY http://127.0.0.1:"), line
        url = line.split()[1]

        def call(function, event):
            request = urllib.request.Request(f"{url}/2015-03-31/functions/{function}/invocations",
                                             data=json.dumps(event).encode(), method="POST")
            try:
                with urllib.request.urlopen(request, timeout=30) as response:
                    return response.status, response.headers.get("X-Amz-Function-Error"), json.loads(response.read())
            except urllib.error.HTTPError as e:
                return e.code, e.headers.get("x-amzn-ErrorType"), json.loads(e.read())

        status, error, body = call("TaskRun", {"reply": "ok"})
        assert (status, error, body["reply"]) == (200, None, "ok")
        with urllib.request.urlopen(f"{url}/_local/handler-pid", timeout=10) as response:
            assert json.loads(response.read()) == {"pid": body["pid"]}
        status, error, body = call("arn:aws:lambda:us-east-1:123456789012:function:TaskRun",
                                   {"fail": {"errorType": "Boom", "errorMessage": "no"}})
        assert (status, error, body["errorType"]) == (200, "Unhandled", "Boom")
        status, error, _ = call("Other", {})
        assert (status, error) == (404, "ResourceNotFoundException")
    finally:
        lam.terminate()
        assert lam.wait(timeout=10) == 0
