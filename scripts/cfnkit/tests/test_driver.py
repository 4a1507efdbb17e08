"""cfnkit.driver: the requests CloudFormation sends, and its callback loop."""
from cfnkit.driver import Operation, caller_credentials, play, strings

STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/test/1"
CREDS = caller_credentials("test")


def operation(**extra):
    settings = dict(stack_id=STACK_ID, credentials=CREDS)
    settings.update(extra)
    return Operation("CREATE", "Org::ECS::TaskRun", "Migrate",
                     {"Timeout": 300, "Wait": True, "Ratio": 0.5, "Name": "x",
                      "Overrides": {"Command": ["run", 1], "Debug": False}},
                     **settings)


def test_strings_makes_every_scalar_text_as_cloudformation_does():
    assert strings({"a": 1, "b": [True, False, 2.5, None, "s"], "c": {"d": 0}}) == {
        "a": "1", "b": ["true", "false", "2.5", None, "s"], "c": {"d": "0"}}


def test_first_request_is_the_registry_envelope_with_properties_as_strings():
    request = operation().request()
    assert request == {
        "action": "CREATE",
        "awsAccountId": "123456789012",
        "bearerToken": request["bearerToken"],
        "region": "us-east-1",
        "resourceType": "Org::ECS::TaskRun",
        "stackId": STACK_ID,
        "requestData": {
            "callerCredentials": {"accessKeyId": "AKIAIOSFODNN7EXAMPLE",
                                  "secretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                                  "sessionToken": "test"},
            "logicalResourceId": "Migrate",
            "resourceProperties": {"Timeout": "300", "Wait": "true", "Ratio": "0.5", "Name": "x",
                                   "Overrides": {"Command": ["run", "1"], "Debug": "false"}},
        },
    }


def test_optional_parts_of_the_envelope():
    request = operation(previous={"Timeout": 60}, rollback=True, stack_tags={"app": "shop"},
                        account="210987654321", region="eu-west-1").request()
    data = request["requestData"]
    assert data["previousResourceProperties"] == {"Timeout": "60"}
    assert data["stackTags"] == {"app": "shop"}
    assert request["rollback"] is True
    assert (request["awsAccountId"], request["region"]) == ("210987654321", "eu-west-1")
    listed = Operation("LIST", "Org::ECS::TaskRun", None, {}, stack_id=STACK_ID,
                       credentials=CREDS).request()
    assert "logicalResourceId" not in listed["requestData"]
    assert "rollback" not in listed and "callbackContext" not in listed


def test_follow_keeps_the_context_and_resends_the_returned_model():
    op = operation()
    assert op.follow({"status": "IN_PROGRESS", "callbackContext": {"step": 1},
                      "callbackDelaySeconds": 5, "resourceModel": {"Id": "r1"}}) == 5.0
    request = op.request()
    assert request["callbackContext"] == {"step": 1}
    assert request["requestData"]["resourceProperties"] == {"Id": "r1"}
    assert op.follow({"status": "SUCCESS"}) is None
    assert op.follow({"errorType": "Runtime.ExitError"}) is None


def test_follow_without_resending_the_model():
    op = operation(send_returned_model=False)
    first = op.request()["requestData"]["resourceProperties"]
    op.follow({"status": "IN_PROGRESS", "callbackContext": {}, "resourceModel": {"Id": "r1"}})
    request = op.request()
    assert request["requestData"]["resourceProperties"] == first
    assert request["callbackContext"] == {}


def test_play_invokes_again_after_each_delay_with_one_token_until_the_end():
    answers = [
        {"status": "IN_PROGRESS", "callbackContext": {"n": 1}, "callbackDelaySeconds": 5},
        {"status": "IN_PROGRESS", "callbackContext": {"n": 2}, "callbackDelaySeconds": 2},
        {"status": "SUCCESS", "resourceModel": {"Id": "r1"}},
    ]
    requests, slept, seen = [], [], []

    def invoke(request):
        requests.append(request)
        return answers[len(requests) - 1]

    last = play(operation(), invoke, on_answer=seen.append, sleep=slept.append)
    assert last == answers[-1] and seen == answers
    assert slept == [5.0, 2.0]
    assert [r.get("callbackContext") for r in requests] == [None, {"n": 1}, {"n": 2}]
    assert len({r["bearerToken"] for r in requests}) == 1
    assert operation().token != operation().token  # one token per operation


def test_play_gives_up_after_its_time():
    clock = iter(range(0, 1000, 10))
    answer = {"status": "IN_PROGRESS", "callbackContext": {}, "callbackDelaySeconds": 1}
    calls = []

    def invoke(request):
        calls.append(request)
        return answer

    last = play(operation(), invoke, give_up_after=25, sleep=lambda s: None,
                clock=lambda: next(clock))
    assert last["status"] == "IN_PROGRESS"
    assert len(calls) == 3  # at 10, 20 and 30 s: past 25 after the third
