//! Every bad input gets a FAILED progress event with a clear message, and nothing else:
//! sent to the real `bootstrap` binary behind the local Lambda service, as a hostile
//! caller would.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{run, Emulator, LocalLambda, World};
use serde_json::{json, Value};

fn creds() -> Value {
    json!({"accessKeyId": common::ACCESS_KEY, "secretAccessKey": common::SECRET_KEY, "sessionToken": "session"})
}

fn failed(answer: &Value, code: &str) -> String {
    assert_eq!(answer["status"], "FAILED", "{answer}");
    assert_eq!(answer["errorCode"], code, "{answer}");
    answer["message"].as_str().unwrap_or_default().to_string()
}

/// Raw bytes to the Invoke API (the runtime's own JSON reader never sees them first).
fn raw(lambda: &LocalLambda, body: &str) -> Value {
    lambda
        .invoke_raw(body)
        .expect("a progress event, not a function error")
}

#[test]
fn hostile_envelopes_get_a_failed_progress_event() {
    let emulator = Emulator::shared();
    let lambda = LocalLambda::start(emulator);

    // Nested 200 levels deep: deeper than a JSON reader allows.
    let deep = format!(
        "{{\"action\": \"CREATE\", \"x\": {}1{}}}",
        "[".repeat(200),
        "]".repeat(200)
    );
    let message = failed(&raw(&lambda, &deep), "InvalidRequest");
    assert!(message.contains("deeper than 128"), "{message}");

    // A number literal of 400 digits.
    let big = format!("{{\"action\": \"CREATE\", \"requestData\": {{\"resourceProperties\": {{\"Count\": 1{}}}}}}}", "0".repeat(400));
    let message = failed(&raw(&lambda, &big), "InvalidRequest");
    assert!(message.contains("number too large"), "{message}");

    // Credentials with control characters never reach request signing.
    for bad in ["AKIA\u{0}X", "AKIA\r\nX-Injected: 1", "AKIA\nX"] {
        let event = json!({"action": "READ", "requestData": {"callerCredentials":
            {"accessKeyId": bad, "secretAccessKey": "s"}, "resourceProperties": {"Id": "x"}}});
        let message = failed(
            &lambda.invoke(&event).expect("answers"),
            "InvalidCredentials",
        );
        assert!(
            message.contains("accessKeyId") && !message.contains("AKIA"),
            "{message}"
        );
    }

    // No caller credentials: refused at once, never the environment's credentials.
    let began = Instant::now();
    let answer = lambda
        .invoke(&json!({"action": "CREATE", "requestData": {"resourceProperties": {"Cluster": "c", "TaskDefinition": "t"}}}))
        .expect("answers");
    failed(&answer, "InvalidCredentials");
    assert!(
        began.elapsed() < Duration::from_secs(3),
        "answered in {:?}",
        began.elapsed()
    );

    // 100,000 invalid list items: a short answer, well within Lambda's 6 MB.
    let items: Vec<Value> = (0..100_000)
        .map(|i| json!({"Key": "", "Value": i}))
        .collect();
    let event = json!({"action": "UPDATE", "requestData": {"callerCredentials": creds(),
        "resourceProperties": {"Id": "Migrate-0000000000000000", "Cluster": "c", "TaskDefinition": "t", "Tags": items}}});
    let answer = lambda.invoke(&event).expect("answers");
    let message = failed(&answer, "InvalidRequest");
    assert!(
        answer.to_string().len() < 8_000,
        "{} bytes",
        answer.to_string().len()
    );
    assert!(message.contains(" more"), "{message}");

    // Types of the envelope named by path and JSON type, never by value.
    let answer = lambda
        .invoke(&json!({"action": "CREATE", "region": {"SECRET-REGION": 1}}))
        .expect("answers");
    let message = failed(&answer, "InvalidRequest");
    assert!(
        message.contains("/region: expected a string, found an object")
            && !message.contains("SECRET"),
        "{message}"
    );
}

#[test]
fn property_rules_the_schema_owns() {
    let emulator = Emulator::shared();
    let lambda = LocalLambda::start(emulator);
    run(async {
        let world = World::new("hostile").await;
        let cfn = world.cfn("Migrate");
        // LaunchType with CapacityProviderStrategy never reaches RunTask.
        let both = world.properties(json!({"LaunchType": "FARGATE", "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT"}]}));
        let answer = lambda
            .invoke(&cfn.envelope("CREATE", &common::new_token(), Some(&both), None, None))
            .expect("answers");
        let message = failed(&answer, "InvalidRequest");
        assert!(
            message.contains("LaunchType and CapacityProviderStrategy exclude each other"),
            "{message}"
        );
        assert!(world.run_task_calls().is_empty());
        // Count 1.0 is an integer under JSON Schema: accepted.
        let mut props = world.properties(json!({}));
        props["Count"] = json!(1.0);
        let mut event = cfn.envelope("CREATE", &common::new_token(), None, None, None);
        event["requestData"]["resourceProperties"] = props;
        let answer = lambda.invoke(&event).expect("answers");
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
        assert_eq!(answer["resourceModel"]["Count"], 1);
        // A load balancer's 503 page on every try: ServiceInternalError, which
        // CloudFormation retries, whatever the body.
        let id = answer["resourceModel"]["Id"].as_str().unwrap().to_string();
        world.emulator.fault(
            "ssm:GetParameter",
            6,
            json!({"status": 503, "html": true, "bodyContains": id}),
        );
        let read = lambda
            .invoke(&cfn.envelope(
                "READ",
                &common::new_token(),
                Some(&json!({"Id": id})),
                None,
                None,
            ))
            .expect("answers");
        failed(&read, "ServiceInternalError");
    });
}

#[test]
fn secrets_stay_out_of_the_log_even_at_trace_level() {
    let emulator = Emulator::shared();
    // The real binary with every log line on: the SDK's, the runtime's (whose raw-event
    // trace would print the whole event, credentials included) and ours.
    let lambda = LocalLambda::with_log_level(emulator, env!("CARGO_BIN_EXE_bootstrap"), "trace");
    let secrets = [
        "SECRET-KEY-4d1f9a",
        "SESSION-TOKEN-8b2e7c",
        "OVERRIDE-VALUE-5c0a3d",
    ];
    run(async {
        let world = World::new("trace").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Overrides": {"ContainerOverrides": [
            {"Name": "app", "Environment": [{"Name": "DB_PASSWORD", "Value": secrets[2]}]}]}}));
        let mut event = cfn.envelope("CREATE", &common::new_token(), Some(&props), None, None);
        for key in ["callerCredentials", "providerCredentials"] {
            event["requestData"][key] = json!({"accessKeyId": common::ACCESS_KEY,
                "secretAccessKey": secrets[0], "sessionToken": secrets[1]});
        }
        let mut answer = lambda.invoke(&event).expect("answers");
        while answer["status"] == "IN_PROGRESS" {
            event["callbackContext"] = answer["callbackContext"].clone();
            answer = lambda.invoke(&event).expect("answers");
        }
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
    });
    lambda_log_settled(&lambda);
    let log = std::fs::read_to_string(&lambda.log).expect("the handler's log");
    assert!(
        log.contains("TRACE") && log.contains("DEBUG"),
        "the level was not honoured: {} bytes of log",
        log.len()
    );
    for secret in secrets {
        assert!(
            !log.contains(secret),
            "{secret} is in {}",
            lambda.log.display()
        );
    }
}

/// Waits until the handler's log stops growing (it is written by another process).
fn lambda_log_settled(lambda: &LocalLambda) {
    let mut last = 0;
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(100));
        let now = std::fs::metadata(&lambda.log).map(|m| m.len()).unwrap_or(0);
        if now == last && now > 0 {
            break;
        }
        last = now;
    }
}

#[test]
fn the_binary_outside_lambda_says_what_it_is() {
    let output = Command::new(env!("CARGO_BIN_EXE_bootstrap"))
        .env_remove("AWS_LAMBDA_RUNTIME_API")
        .output()
        .expect("runs");
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Org::ECS::TaskRun resource handler") && stderr.contains("make demo"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("panicked") && !stderr.contains("backtrace"),
        "{stderr}"
    );
}
