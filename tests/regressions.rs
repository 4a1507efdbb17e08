//! One end-to-end regression per defect of the first wave (issue 7), against the
//! emulator; the ones about the binary (killed between two calls, a malformed envelope)
//! run the real `bootstrap` behind the local Lambda service.

mod common;

use std::time::{Duration, Instant};

use common::{new_token, run, Emulator, LocalLambda, World};
use serde_json::{json, Value};

fn never_stops() -> Value {
    json!({"kind": "never_stops"})
}

/// Defect 1: A task stopped by anything but its own essential container's exit fails the run,
/// whatever its exit codes: an app that exits 0 on SIGTERM must not pass an interrupted
/// migration.
#[test]
fn defect_1_an_interrupted_task_that_exits_0_fails_the_deploy() {
    run(async {
        let world = World::new("spot").await;
        for code in [
            "SpotInterruption",
            "UserInitiated",
            "TerminationNotice",
            "ServiceSchedulerInitiated",
        ] {
            world.emulator.queue_outcome(
                &world.family,
                json!({"kind": "exit", "afterDescribes": 1, "stopCode": code, "stoppedReason": format!("{code} happened"),
                       "containers": {"app": {"exitCode": 0}, "log-router": {"exitCode": 0}}}),
                1,
            );
            let op = world
                .cfn(&format!("Migrate{}", &code[..4]))
                .create(&world.properties(json!({})))
                .await;
            assert_eq!(op.status(), "FAILED", "{code}: {:?}", op.events);
            assert_eq!(op.error_code(), "GeneralServiceException", "{code}");
            assert!(
                op.message().contains(code) && op.message().contains("stopped before it finished"),
                "{}",
                op.message()
            );
        }
    });
}

/// Defect 2: On timeout the outcome is recorded before the tasks are stopped: a record write
/// that fails at that moment delays the stop; it never lets a later look re-decide the
/// run from the tasks we stopped.
#[test]
fn defect_2_a_timeout_is_recorded_before_the_stop_and_never_redecided() {
    run(async {
        let world = World::new("timeout-write").await;
        world.emulator.family_default(&world.family, never_stops());
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Timeout": 3}));
        let token = new_token();
        // Let the run be recorded (one write: the plan and the RunTask sent; what RunTask
        // answered travels in the callback context), then fail the next writes beyond the
        // SDK's own retries: the one that would record TIMED_OUT among them.
        world.fault("ssm:PutParameter", 6, json!({"skip": 1, "status": 503}));
        let op = cfn
            .operate_with_token("CREATE", &token, Some(&props), None)
            .await;
        assert_eq!(op.status(), "FAILED", "{:?}", op.events);
        assert_eq!(op.error_code(), "NotStabilized", "{}", op.message());
        assert!(
            op.message().starts_with("timed out after 3 s"),
            "{}",
            op.message()
        );
        // No StopTask before a record write succeeded after the failed ones.
        let log = world.emulator.call_log();
        let ours: Vec<&Value> = log
            .iter()
            .filter(|c| {
                c["body"]["cluster"] == world.cluster
                    || c["api"].as_str().is_some_and(|a| a.starts_with("ssm:"))
            })
            .collect();
        let first_stop = ours
            .iter()
            .position(|c| c["api"] == "StopTask")
            .expect("a StopTask");
        let failed_writes: Vec<usize> = ours
            .iter()
            .enumerate()
            .filter(|(_, c)| c["api"] == "ssm:PutParameter" && c["throttled"] == true)
            .map(|(i, _)| i)
            .collect();
        let recorded_after_failures = ours.iter().enumerate().any(|(i, c)| {
            i > *failed_writes.last().unwrap_or(&0)
                && i < first_stop
                && c["api"] == "ssm:PutParameter"
                && c["throttled"] == false
        });
        assert!(!failed_writes.is_empty(), "the faults fired");
        assert!(
            recorded_after_failures,
            "the timeout was recorded before the first StopTask"
        );
        assert_eq!(world.tasks()[0]["lastStatus"], "STOPPED");
    });
}

/// Defect 3a: An update that does not run the tasks, while a run is still going, stops that run
/// and records it superseded: nothing is left running unobserved.
#[test]
fn defect_3_an_update_that_does_not_run_stops_the_run_still_going() {
    run(async {
        let world = World::new("orphan-update").await;
        world.emulator.family_default(&world.family, never_stops());
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Timeout": 600}));
        // A CREATE whose operation ended without its run (CloudFormation gave up on it).
        let first = cfn
            .invoke("CREATE", &new_token(), Some(&props), None, None)
            .await;
        assert_eq!(first["status"], "IN_PROGRESS", "{first}");
        let id = first["resourceModel"]["Id"].as_str().unwrap().to_string();
        // The next update does not run (RunOnUpdate false, and in another cluster).
        let other = World::new("orphan-update-b").await;
        let mut desired = props.clone();
        desired["RunOnUpdate"] = json!(false);
        desired["Cluster"] = json!(other.cluster);
        let update = cfn.update(&id, &desired, &props).await;
        assert_eq!(update.status(), "SUCCESS", "{:?}", update.events);
        assert_eq!(update.model()["Status"], "SUPERSEDED", "{}", update.model());
        let tasks = world.tasks();
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            tasks[0]["lastStatus"], "STOPPED",
            "the run's own cluster: {}",
            tasks[0]
        );
        assert!(
            tasks[0]["stoppedReason"]
                .as_str()
                .unwrap()
                .contains("superseded by an update"),
            "{}",
            tasks[0]
        );
        let delete = cfn.delete(&id, &desired).await;
        assert_eq!(delete.status(), "SUCCESS");
        assert!(other.tasks().is_empty());
    });
}

/// Defect 3b: A DELETE whose StopTask keeps failing does not answer SUCCESS: the record stays
/// (and follows the tasks) until every task is confirmed stopped.
#[test]
fn defect_3_delete_keeps_the_record_until_the_tasks_are_confirmed_stopped() {
    run(async {
        let world = World::new("orphan-delete").await;
        world.emulator.family_default(&world.family, never_stops());
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Count": 3, "Timeout": 600}));
        let first = cfn
            .invoke("CREATE", &new_token(), Some(&props), None, None)
            .await;
        let id = first["resourceModel"]["Id"].as_str().unwrap().to_string();
        // A burst of 5xx on StopTask, longer than the SDK's retries.
        world.fault("StopTask", 60, json!({"status": 503, "html": true}));
        let mut desired = props.clone();
        desired["Id"] = json!(id);
        let token = new_token();
        let answer = cfn
            .invoke("DELETE", &token, Some(&desired), None, None)
            .await;
        assert_eq!(answer["status"], "IN_PROGRESS", "{answer}");
        assert!(answer.get("resourceModel").is_none());
        assert_eq!(
            cfn.read(&id).await.status(),
            "SUCCESS",
            "the record stays while tasks may run"
        );
        let op = cfn
            .operate_with_token("DELETE", &token, Some(&desired), None)
            .await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert!(
            world.tasks().iter().all(|t| t["lastStatus"] == "STOPPED"),
            "{:?}",
            world.tasks()
        );
        assert_eq!(cfn.read(&id).await.error_code(), "NotFound");
    });
}

/// Defect 4: StartTask has no idempotency token: a 5xx returned after ECS started the tasks is
/// never retried blindly; the engine looks for what the attempt started.
#[test]
fn defect_4_start_task_failing_after_it_acted_starts_no_duplicate() {
    run(async {
        let world = World::new("start-5xx").await;
        let instances = world.emulator.control(
            "POST",
            "/_taskrun/container-instances",
            Some(json!({"cluster": world.cluster, "count": 2})),
        )["containerInstanceArns"]
            .clone();
        world.fault("StartTask", 1, json!({"after": true, "status": 503}));
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({"Instances": instances, "PollInterval": 1})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert_eq!(world.tasks().len(), 2, "one task per instance, none twice");
        assert_eq!(
            world.emulator.calls("StartTask", &world.cluster).len(),
            1,
            "StartTask never sent again"
        );
        assert_eq!(op.model()["TaskArns"].as_array().map(Vec::len), Some(2));
    });
}

/// Defect 5: UpdateCriteria keeps digests of the listed keys only: a task definition with 110
/// environment variables does not blow the record.
#[test]
fn defect_5_update_criteria_on_a_large_task_definition_keeps_the_record_small() {
    run(async {
        use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair};
        let world = World::new("big-env").await;
        let mut app = ContainerDefinition::builder()
            .name("app")
            .image("example/migrate:1")
            .memory(256)
            .essential(true);
        for i in 0..110 {
            app = app.environment(
                KeyValuePair::builder()
                    .name(format!("VAR_{i:03}"))
                    .value("v".repeat(60))
                    .build(),
            );
        }
        let family = format!("{}-big", world.family);
        world
            .emulator
            .ecs()
            .register_task_definition()
            .family(&family)
            .container_definitions(app.build())
            .send()
            .await
            .expect("register");
        let props = world.properties(json!({"TaskDefinition": family,
            "UpdateCriteria": [{"Container": "app", "EnvironmentKeys": ["VAR_001"]}]}));
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        let parameter = aws_sdk_ssm::Client::from_conf(
            aws_sdk_ssm::Config::builder()
                .behavior_version_latest()
                .endpoint_url(&world.emulator.url)
                .region(aws_sdk_ssm::config::Region::new(common::REGION))
                .credentials_provider(aws_credential_types::Credentials::new(
                    common::ACCESS_KEY,
                    common::SECRET_KEY,
                    None,
                    None,
                    "t",
                ))
                .http_client(taskrun::aws::https_client())
                .build(),
        )
        .get_parameter()
        .name(format!("/org-ecs-taskrun/runs/{}", op.id()))
        .with_decryption(true)
        .send()
        .await
        .expect("the record");
        let size = parameter
            .parameter()
            .and_then(|p| p.value())
            .map_or(0, str::len);
        assert!(size < 2500, "the record takes {size} bytes");
    });
}

/// Defect 6: A run that is over never answers a code CloudFormation retries: a batch refused
/// after others started stops those and fails with the refusal's (final) code.
#[test]
fn defect_6_a_dead_end_answers_a_code_cloudformation_does_not_retry() {
    run(async {
        let world = World::new("dead-end").await;
        world.emulator.family_default(&world.family, never_stops());
        world.fault(
            "RunTask",
            5,
            json!({"skip": 1, "code": "InvalidParameterException", "message": "No Container Instances were found", "status": 400}),
        );
        let op = world
            .cfn("Seed")
            .create(&world.properties(json!({"Count": 25})))
            .await;
        assert_eq!(op.status(), "FAILED", "{:?}", op.events);
        assert_eq!(op.error_code(), "InvalidRequest", "{}", op.message());
        assert!(
            op.message().contains("No Container Instances were found"),
            "{}",
            op.message()
        );
        let tasks = world.tasks();
        assert!(
            !tasks.is_empty() && tasks.iter().all(|t| t["lastStatus"] == "STOPPED"),
            "{tasks:?}"
        );
        assert_eq!(
            world.cfn("Seed").read(&op.id()).await.error_code(),
            "NotFound"
        );
    });
}

/// Defect 7: The real binary killed right after RunTask, before the record knew the tasks:
/// CloudFormation delivers the invocation again, which finds the planned run and learns
/// its tasks from their idempotency tokens. No duplicate, no orphan, and every invocation
/// answers within the Registry's 60 s.
#[test]
fn defect_7_the_binary_killed_between_two_calls_resumes_without_duplicates() {
    let emulator = Emulator::shared();
    let lambda = LocalLambda::start(emulator);
    run(async {
        let world = World::new("killed").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Count": 15}));
        let token = new_token();
        let event = cfn.envelope("CREATE", &token, Some(&props), None, None);
        // Warm the binary (it starts on the first invocation), then kill it on RunTask.
        let warm = lambda.invoke(
            &json!({"action": "LIST", "requestData": {"callerCredentials":
            {"accessKeyId": common::ACCESS_KEY, "secretAccessKey": common::SECRET_KEY}}}),
        );
        assert!(warm.is_ok(), "{warm:?}");
        let pid = lambda.handler_pid().expect("the handler runs");
        emulator.control(
            "POST",
            "/_taskrun/kill",
            Some(json!({"api": "RunTask", "pid": pid, "times": 1, "bodyContains": world.cluster})),
        );
        let died = lambda.invoke(&event);
        assert!(
            died.is_err(),
            "the process was killed mid-invocation: {died:?}"
        );
        let mut context: Option<Value> = None;
        let mut properties = props.clone();
        for _ in 0..100 {
            let request = cfn.envelope("CREATE", &token, Some(&properties), None, context.as_ref());
            let began = Instant::now();
            let answer = lambda.invoke(&request).expect("answers");
            assert!(
                began.elapsed() < Duration::from_secs(60),
                "an invocation took {:?}",
                began.elapsed()
            );
            if answer["status"] != "IN_PROGRESS" {
                assert_eq!(answer["status"], "SUCCESS", "{answer}");
                assert_eq!(
                    answer["resourceModel"]["TaskArns"].as_array().map(Vec::len),
                    Some(15)
                );
                break;
            }
            context = Some(answer["callbackContext"].clone());
            properties = answer["resourceModel"].clone();
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(world.tasks().len(), 15, "no task started twice");
    });
}

/// Defect 8: An update that changes only what does not shape the tasks updates the TaskRun
/// without running it again: a tag change does not re-run a migration.
#[test]
fn defect_8_updates_of_tags_or_timing_do_not_rerun() {
    run(async {
        let world = World::new("no-rerun").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Tags": [{"Key": "a", "Value": "1"}]}));
        let created = cfn.create(&props).await;
        assert_eq!(created.status(), "SUCCESS");
        let desired = world.properties(
            json!({"Tags": [{"Key": "a", "Value": "2"}], "Timeout": 99, "PollInterval": 7}),
        );
        let update = cfn.update(&created.id(), &desired, &props).await;
        assert_eq!(update.status(), "SUCCESS", "{:?}", update.events);
        assert!(update.message().contains("not run"), "{}", update.message());
        assert_eq!(update.model()["Timeout"], 99);
        assert_eq!(
            update.model()["TaskArns"],
            created.model()["TaskArns"],
            "the previous run's outputs"
        );
        assert_eq!(world.run_task_calls().len(), 1, "one run, the create's");
        let changed = world.properties(json!({"Count": 2, "Tags": [{"Key": "a", "Value": "2"}]}));
        let rerun = cfn.update(&created.id(), &changed, &desired).await;
        assert_eq!(rerun.status(), "SUCCESS");
        assert!(
            rerun.message().contains("Count changed"),
            "{}",
            rerun.message()
        );
        assert_eq!(world.run_task_calls().len(), 2);
    });
}

/// Defect 9: Protocol: a passing fault answers IN_PROGRESS with the model and the run's own
/// pace; a stale callback answers a final code; a malformed envelope names the path of
/// what it could not read, never its value.
#[test]
fn defect_9_protocol_answers_keep_the_model_the_pace_and_the_secrets() {
    let emulator = Emulator::shared();
    let lambda = LocalLambda::start(emulator);
    run(async {
        let world = World::new("protocol").await;
        world
            .emulator
            .family_default(&world.family, json!({"kind": "exit", "afterDescribes": 6}));
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"PollInterval": 2}));
        world.fault("DescribeTasks", 9, json!({"status": 503}));
        let op = cfn.create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        for event in op.events.iter().filter(|e| e["status"] == "IN_PROGRESS") {
            assert!(event["resourceModel"]["Id"].is_string(), "{event}");
            // At most PollInterval, jittered by up to 25 % (whole seconds).
            assert!(
                event["callbackDelaySeconds"]
                    .as_u64()
                    .is_some_and(|d| (1..=3).contains(&d)),
                "{event}"
            );
        }

        // A stale callback: the run it follows was replaced by an update's.
        world.emulator.family_default(&world.family, never_stops());
        let token = new_token();
        let first = cfn.invoke("CREATE", &token, Some(&props), None, None).await;
        let id = first["resourceModel"]["Id"].as_str().unwrap().to_string();
        let mut desired = props.clone();
        desired["Count"] = json!(2);
        desired["Timeout"] = json!(5);
        let update = cfn.update(&id, &desired, &props).await;
        assert_eq!(update.error_code(), "NotStabilized", "{:?}", update.events);
        let mut old = first["resourceModel"].clone();
        old["Id"] = json!(id);
        let stale = cfn
            .invoke(
                "CREATE",
                &token,
                Some(&old),
                None,
                Some(&first["callbackContext"]),
            )
            .await;
        assert_eq!(stale["status"], "FAILED", "{stale}");
        assert_eq!(
            stale["errorCode"], "GeneralServiceException",
            "final, not ResourceConflict: {stale}"
        );

        // A malformed envelope, through the real binary.
        let malformed = json!({"action": "CREATE", "requestData": {"callerCredentials":
            {"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "x", "sessionToken": ["SECRET-SESSION"]}}});
        let answer = lambda.invoke(&malformed).expect("answers");
        assert_eq!(answer["errorCode"], "InvalidRequest", "{answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(
            message.contains("/requestData/callerCredentials/sessionToken")
                && !message.contains("SECRET"),
            "{message}"
        );
    });
}
