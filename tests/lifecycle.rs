//! End-to-end lifecycle tests: the handler, driven as CloudFormation drives it, against
//! the emulator process (moto with our ECS task lifecycle) through AWS_ENDPOINT_URL.

mod common;

use common::{new_token, run, World};
use serde_json::{json, Value};

fn exit(codes: Value) -> Value {
    json!({"kind": "exit", "afterDescribes": 1, "containers": codes})
}

#[test]
fn create_count_1_succeeds_with_outputs() {
    run(async {
        let world = World::new("success").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Count": 1, "Timeout": 120,
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["rake", "db:migrate"],
                "Environment": [{"Name": "SECRET_TOKEN", "Value": "s3cr3t"}]}]},
            "Tags": [{"Key": "purpose", "Value": "migration"}]}));
        let op = cfn.create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert_eq!(
            op.events.len(),
            1,
            "a short task is seen finished by the invocation that started it: {:?}",
            op.events
        );
        let model = op.model();
        assert_eq!(model["Status"], "SUCCEEDED");
        assert_eq!(model["Count"], 1, "scalars come back as native JSON types");
        assert_eq!(model["TaskArns"].as_array().map(Vec::len), Some(1));
        assert_eq!(model["Tasks"][0]["Containers"][0]["Name"], "app");
        assert_eq!(model["Tasks"][0]["Containers"][0]["ExitCode"], 0);
        assert!(model["Id"]
            .as_str()
            .is_some_and(|id| id.starts_with("Migrate-")));
        assert!(
            model.get("Overrides").is_none(),
            "Overrides are write-only (they may hold secrets)"
        );
        let calls = world.run_task_calls();
        assert_eq!(calls.len(), 1);
        let call = &calls[0];
        assert_eq!(call["count"], 1);
        assert_eq!(call["startedBy"], model["Id"]);
        assert!(call["clientToken"].as_str().is_some_and(|t| !t.is_empty()));
        assert_eq!(
            call["overrides"]["containerOverrides"][0]["command"],
            json!(["rake", "db:migrate"])
        );
        let tags: Vec<(String, String)> = call["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                (
                    t["key"].as_str().unwrap().to_string(),
                    t["value"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        assert!(
            tags.contains(&("purpose".into(), "migration".into())),
            "{tags:?}"
        );
        assert!(
            tags.contains(&("team".into(), "platform".into())),
            "stack tags go to the tasks: {tags:?}"
        );
        // Read answers from the durable record with the same model.
        let read = cfn.read(model["Id"].as_str().unwrap()).await;
        assert_eq!(read.status(), "SUCCESS");
        assert_eq!(read.model(), model);
    });
}

#[test]
fn create_count_25_runs_three_batches_and_tracks_every_task() {
    run(async {
        let world = World::new("batches").await;
        let op = world
            .cfn("Seed")
            .create(&world.properties(json!({"Count": 25})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{}", op.message());
        let mut counts: Vec<u64> = world
            .run_task_calls()
            .iter()
            .filter_map(|c| c["count"].as_u64())
            .collect();
        // Started at once (bounded), so in any order.
        counts.sort_unstable();
        assert_eq!(counts, vec![5, 10, 10]);
        let tokens: std::collections::BTreeSet<String> = world
            .run_task_calls()
            .iter()
            .map(|c| c["clientToken"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(tokens.len(), 3, "one clientToken per batch");
        assert_eq!(op.model()["TaskArns"].as_array().map(Vec::len), Some(25));
        let stopped = world
            .tasks()
            .iter()
            .filter(|t| t["lastStatus"] == "STOPPED")
            .count();
        assert_eq!(stopped, 25, "the handler waited for every task");
    });
}

#[test]
fn create_count_0_succeeds_at_once_without_tasks() {
    run(async {
        let world = World::new("zero").await;
        let op = world
            .cfn("Nothing")
            .create(&world.properties(json!({"Count": 0})))
            .await;
        assert_eq!(op.status(), "SUCCESS");
        assert_eq!(op.events.len(), 1);
        assert_eq!(op.model()["TaskArns"], json!([]));
        assert!(world.run_task_calls().is_empty());
    });
}

#[test]
fn non_zero_exit_fails_with_container_code_and_reason() {
    run(async {
        let world = World::new("exit2").await;
        world.emulator.queue_outcome(&world.family, json!({"kind": "exit", "afterDescribes": 1,
            "containers": {"app": {"exitCode": 2}}, "stoppedReason": "Essential container in task exited"}), 1);
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(op.error_code(), "GeneralServiceException");
        let message = op.message();
        assert!(
            message.contains("container app exited with code 2"),
            "{message}"
        );
        assert!(
            message.contains("EssentialContainerExited: Essential container in task exited"),
            "{message}"
        );
        let task_id = world.tasks()[0]["taskArn"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap()
            .to_string();
        assert!(
            message.contains(&task_id),
            "the message names the task: {message}"
        );
        // A failed CREATE leaves no resource behind.
        let read = world.cfn("Migrate").read(&op.id()).await;
        assert_eq!(read.error_code(), "NotFound");
    });
}

#[test]
fn sidecar_failure_does_not_fail_the_run() {
    run(async {
        let world = World::new("sidecar").await;
        world.emulator.queue_outcome(
            &world.family,
            exit(json!({"app": {"exitCode": 0}, "log-router": {"exitCode": 1}})),
            1,
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{}", op.message());
        let containers = &op.model()["Tasks"][0]["Containers"];
        assert!(
            containers
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["Name"] == "log-router" && c["ExitCode"] == 1),
            "the sidecar's exit code is still reported: {containers}"
        );
        // Naming the sidecar as deciding makes the same outcome fail.
        world.emulator.queue_outcome(
            &world.family,
            exit(json!({"app": {"exitCode": 0}, "log-router": {"exitCode": 1}})),
            1,
        );
        let strict = world
            .cfn("Strict")
            .create(&world.properties(json!({"DecidingContainers": ["app", "log-router"]})))
            .await;
        assert_eq!(strict.status(), "FAILED");
        assert!(
            strict
                .message()
                .contains("container log-router exited with code 1"),
            "{}",
            strict.message()
        );
    });
}

#[test]
fn task_that_never_started_fails_with_its_reason() {
    run(async {
        let world = World::new("nostart").await;
        world.emulator.queue_outcome(&world.family, json!({"kind": "never_starts",
            "stoppedReason": "CannotPullContainerError: pull access denied for example/migrate",
            "containers": {"app": {"reason": "CannotPullContainerError: pull access denied for example/migrate"}}}), 1);
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert!(
            op.message().contains("never started (TaskFailedToStart"),
            "{}",
            op.message()
        );
        assert!(
            op.message()
                .contains("container app: CannotPullContainerError"),
            "{}",
            op.message()
        );
    });
}

#[test]
fn placement_failure_fails_with_the_reason() {
    run(async {
        let world = World::new("placement").await;
        world.emulator.control(
            "POST",
            "/_taskrun/failures",
            Some(json!({"family": world.family, "reason": "RESOURCE:MEMORY", "count": 1})),
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(op.events.len(), 1, "nothing to wait for");
        assert!(
            op.message().contains("task not placed: RESOURCE:MEMORY"),
            "{}",
            op.message()
        );
    });
}

#[test]
fn timeout_fails_and_stops_the_task() {
    run(async {
        let world = World::new("timeout").await;
        world
            .emulator
            .queue_outcome(&world.family, json!({"kind": "never_stops"}), 1);
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({"Timeout": 2})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(op.error_code(), "NotStabilized");
        assert!(
            op.message().contains("timed out after 2 s"),
            "{}",
            op.message()
        );
        let tasks = world.tasks();
        assert_eq!(tasks.len(), 1);
        assert_eq!(
            tasks[0]["lastStatus"], "STOPPED",
            "the task was stopped: {}",
            tasks[0]
        );
        assert_eq!(tasks[0]["stopCode"], "UserInitiated");
        let reason = tasks[0]["stoppedReason"].as_str().unwrap();
        assert!(
            reason.starts_with("Org::ECS::TaskRun ") && reason.contains("timed out after 2 s"),
            "the stop reason names the TaskRun and why: {reason}"
        );
        assert!(op.elapsed.as_secs_f64() >= 2.0);
    });
}

#[test]
fn start_task_on_named_container_instances() {
    run(async {
        let world = World::new("instances").await;
        let registered = world.emulator.control(
            "POST",
            "/_taskrun/container-instances",
            Some(json!({"cluster": world.cluster, "count": 2})),
        );
        let instances = registered["containerInstanceArns"].clone();
        let op = world
            .cfn("OnHosts")
            .create(&world.properties(json!({"Instances": instances, "Count": 5})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{}", op.message());
        assert_eq!(
            op.model()["TaskArns"].as_array().map(Vec::len),
            Some(2),
            "one task per instance, Count ignored"
        );
        assert!(world.run_task_calls().is_empty());
        let starts = world.emulator.calls("StartTask", &world.cluster);
        assert_eq!(starts.len(), 1);
        assert_eq!(starts[0]["containerInstances"], instances);
    });
}

#[test]
fn update_with_run_on_update_false_keeps_previous_outputs() {
    run(async {
        let world = World::new("norerun").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"RunOnUpdate": false}));
        let created = cfn.create(&props).await;
        assert_eq!(created.status(), "SUCCESS");
        let changed =
            world.properties(json!({"RunOnUpdate": false, "Count": 2, "Triggers": ["v2"]}));
        let updated = cfn.update(&created.id(), &changed, &props).await;
        assert_eq!(updated.status(), "SUCCESS");
        assert_eq!(updated.events.len(), 1);
        assert_eq!(
            world.run_task_calls().len(),
            1,
            "no task started by the update"
        );
        assert_eq!(updated.model()["TaskArns"], created.model()["TaskArns"]);
        assert_eq!(updated.model()["Count"], 2, "the new properties are kept");
        assert_eq!(updated.model()["Id"], created.model()["Id"]);
    });
}

#[test]
fn update_criteria_run_only_when_a_listed_value_changes() {
    run(async {
        let world = World::new("criteria").await;
        let cfn = world.cfn("Migrate");
        let criteria = json!([{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}]);
        let props = world.properties(json!({"UpdateCriteria": criteria}));
        let created = cfn.create(&props).await;
        assert_eq!(created.status(), "SUCCESS");
        let id = created.id();

        // Unchanged DB_HOST (other properties changed): no task.
        let same = world.properties(json!({"UpdateCriteria": criteria, "Timeout": 600}));
        let skipped = cfn.update(&id, &same, &props).await;
        assert_eq!(skipped.status(), "SUCCESS");
        assert!(
            skipped
                .message()
                .contains("no UpdateCriteria environment value changed"),
            "{}",
            skipped.message()
        );
        assert_eq!(world.run_task_calls().len(), 1);

        // A new revision with another DB_HOST: the tasks run again, on that revision.
        let revision = world.register("db2.internal").await;
        let moved = world.properties(
            json!({"UpdateCriteria": criteria, "Timeout": 600, "TaskDefinition": revision}),
        );
        let ran = cfn.update(&id, &moved, &same).await;
        assert_eq!(ran.status(), "SUCCESS", "{}", ran.message());
        assert!(
            ran.events[0]["message"]
                .as_str()
                .unwrap_or_default()
                .contains("app: DB_HOST"),
            "{:?}",
            ran.events[0]
        );
        let calls = world.run_task_calls();
        assert_eq!(calls.len(), 2);
        assert_eq!(calls[1]["taskDefinition"], json!(revision));
        assert_ne!(ran.model()["TaskArns"], created.model()["TaskArns"]);
        assert_eq!(ran.model()["Id"], json!(id), "an update keeps the Id");

        // An override of DB_HOST counts as a change too.
        let overridden = world.properties(json!({"UpdateCriteria": criteria, "Timeout": 600, "TaskDefinition": revision,
            "Overrides": {"ContainerOverrides": [{"Name": "app", "Environment": [{"Name": "DB_HOST", "Value": "db3.internal"}]}]}}));
        let ran_again = cfn.update(&id, &overridden, &moved).await;
        assert_eq!(ran_again.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 3);
    });
}

#[test]
fn update_with_changed_triggers_runs() {
    run(async {
        let world = World::new("triggers").await;
        let cfn = world.cfn("Migrate");
        let criteria = json!([{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}]);
        let props =
            world.properties(json!({"UpdateCriteria": criteria, "Triggers": ["schema-v1"]}));
        let created = cfn.create(&props).await;
        let next = world.properties(json!({"UpdateCriteria": criteria, "Triggers": ["schema-v2"]}));
        let ran = cfn.update(&created.id(), &next, &props).await;
        assert_eq!(ran.status(), "SUCCESS");
        assert_eq!(
            world.run_task_calls().len(),
            2,
            "a Triggers change runs even with UpdateCriteria unchanged"
        );
    });
}

#[test]
fn update_stops_a_task_still_running_from_the_earlier_run() {
    run(async {
        let world = World::new("supersede").await;
        let cfn = world.cfn("Migrate");
        world
            .emulator
            .queue_outcome(&world.family, json!({"kind": "never_stops"}), 1);
        let props = world.properties(json!({}));
        // The CREATE is abandoned after its first answer (as when CloudFormation cancels).
        let first = cfn.envelope("CREATE", &new_token(), Some(&props), None, None);
        let answer = taskrun::handle_value(first).await;
        assert_eq!(answer["status"], "IN_PROGRESS");
        let id = answer["resourceModel"]["Id"].as_str().unwrap().to_string();
        let next = world.properties(json!({"Triggers": ["again"]}));
        let ran = cfn.update(&id, &next, &props).await;
        assert_eq!(ran.status(), "SUCCESS", "{}", ran.message());
        let tasks = world.tasks();
        assert_eq!(tasks.len(), 2);
        let old = tasks
            .iter()
            .find(|t| t["stopCode"] == "UserInitiated")
            .expect("the earlier task was stopped");
        assert!(old["stoppedReason"]
            .as_str()
            .unwrap()
            .contains("superseded by an update"));
    });
}

#[test]
fn delete_stops_running_tasks_and_then_everything_is_not_found() {
    run(async {
        let world = World::new("delete").await;
        let cfn = world.cfn("Migrate");
        world
            .emulator
            .queue_outcome(&world.family, json!({"kind": "never_stops"}), 2);
        let props = world.properties(json!({"Count": 2}));
        let answer = cfn
            .invoke("CREATE", &new_token(), Some(&props), None, None)
            .await;
        assert_eq!(answer["status"], "IN_PROGRESS");
        let id = answer["resourceModel"]["Id"].as_str().unwrap().to_string();

        let deleted = cfn.delete(&id, &props).await;
        assert_eq!(deleted.status(), "SUCCESS");
        assert!(
            deleted.last().get("resourceModel").is_none(),
            "a DELETE answers without a model"
        );
        let tasks = world.tasks();
        assert_eq!(tasks.len(), 2);
        assert!(
            tasks
                .iter()
                .all(|t| t["lastStatus"] == "STOPPED" && t["stopCode"] == "UserInitiated"),
            "{tasks:?}"
        );

        assert_eq!(cfn.delete(&id, &props).await.error_code(), "NotFound");
        assert_eq!(cfn.read(&id).await.error_code(), "NotFound");
        assert_eq!(
            cfn.update(&id, &props, &props).await.error_code(),
            "NotFound"
        );
    });
}

#[test]
fn delete_succeeds_even_when_the_properties_are_invalid() {
    run(async {
        let world = World::new("baddelete").await;
        let cfn = world.cfn("Migrate");
        let created = cfn.create(&world.properties(json!({}))).await;
        let broken = json!({"Count": "lots", "Bogus": true});
        assert_eq!(cfn.delete(&created.id(), &broken).await.status(), "SUCCESS");
    });
}

#[test]
fn the_same_create_delivered_twice_starts_no_duplicate_task() {
    run(async {
        let world = World::new("redeliver").await;
        let cfn = world.cfn("Migrate");
        let props = world.properties(json!({"Count": 3}));
        let token = new_token();
        let event = cfn.envelope("CREATE", &token, Some(&props), None, None);
        let first = common::invoke_handler(event.clone()).await;
        let second = common::invoke_handler(event).await;
        assert_eq!(first["status"], "SUCCESS", "{first}");
        assert_eq!(second["status"], "SUCCESS", "{second}");
        assert_eq!(first["resourceModel"], second["resourceModel"]);
        assert_eq!(world.tasks().len(), 3, "no task started twice");
        let op = cfn
            .operate_with_token("CREATE", &token, Some(&props), None)
            .await;
        assert_eq!(op.status(), "SUCCESS");
        assert_eq!(op.model()["TaskArns"], first["resourceModel"]["TaskArns"]);
        assert_eq!(world.tasks().len(), 3);
    });
}

#[test]
fn rundtask_retried_with_its_client_token_returns_the_same_tasks() {
    // The handler's clientToken is what makes a retried RunTask safe (e.g. after a
    // timeout of the first attempt): the emulator honours it as ECS does.
    run(async {
        let world = World::new("token").await;
        let ecs = world.emulator.ecs();
        let start = || {
            ecs.run_task()
                .cluster(&world.cluster)
                .task_definition(&world.family)
                .count(2)
                .client_token("fixed-token")
                .send()
        };
        let a = start().await.unwrap();
        let b = start().await.unwrap();
        let arns = |o: &aws_sdk_ecs::operation::run_task::RunTaskOutput| {
            o.tasks()
                .iter()
                .map(|t| t.task_arn().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(arns(&a), arns(&b));
        assert_eq!(world.tasks().len(), 2);
    });
}

#[test]
fn invalid_models_are_rejected_with_every_violation() {
    run(async {
        let world = World::new("invalid").await;
        let cfn = world.cfn("Migrate");
        let cases = [
            (
                json!({"Cluster": world.cluster, "Count": 500}),
                vec![
                    "/Count: value is greater than the maximum of 100",
                    "\"TaskDefinition\" is a required property",
                ],
            ),
            (
                json!({"Cluster": world.cluster, "TaskDefinition": world.family, "Count": "many"}),
                vec!["/Count: value is not of type \"integer\""],
            ),
            (
                json!({"Cluster": world.cluster, "TaskDefinition": world.family, "LaunchType": "SUBMARINE"}),
                vec!["/LaunchType"],
            ),
            (
                json!({"Cluster": world.cluster, "TaskDefinition": world.family, "DecidingContainers": ["migrator"]}),
                vec![
                    "DecidingContainers names containers that task definition",
                    "migrator",
                ],
            ),
        ];
        for (props, wants) in cases {
            let op = cfn.create(&props).await;
            assert_eq!(op.status(), "FAILED", "{props}");
            assert_eq!(op.error_code(), "InvalidRequest", "{props}");
            for want in wants {
                assert!(
                    op.message().contains(want),
                    "{props}: {} lacks {want}",
                    op.message()
                );
            }
        }
        assert!(world.run_task_calls().is_empty());
        // A cluster that does not exist is the user's mistake too.
        let missing = cfn
            .create(&json!({"Cluster": "no-such-cluster", "TaskDefinition": world.family}))
            .await;
        assert_eq!(missing.status(), "FAILED");
        assert_eq!(
            missing.error_code(),
            "InvalidRequest",
            "{}",
            missing.message()
        );
    });
}

#[test]
fn properties_too_large_to_record_are_rejected_before_any_task_starts() {
    run(async {
        let world = World::new("toolarge").await;
        // Values that do not deflate (records over 4 KB are stored deflated): 20 KB of
        // them is more than an SSM parameter holds even so.
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let triggers: Vec<String> = (0..20)
            .map(|_| {
                (0..64)
                    .map(|_| {
                        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
                        format!("{:016x}", seed)
                    })
                    .collect::<String>()
            })
            .collect();
        let props = world.properties(json!({"Triggers": triggers}));
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(op.error_code(), "InvalidRequest");
        assert!(
            op.message().contains("the properties are too large"),
            "{}",
            op.message()
        );
        assert!(
            !op.message().contains(&triggers[0][..32]),
            "no value in the message"
        );
        assert!(
            world.run_task_calls().is_empty(),
            "nothing started that could not be followed"
        );
    });
}

#[test]
fn garbage_envelopes_get_a_failed_event() {
    run(async {
        common::Emulator::shared();
        for event in [
            json!(null),
            json!("CREATE"),
            json!([]),
            json!({}),
            json!({"action": "EXPLODE"}),
            json!({"action": "CREATE", "requestData": 7}),
            json!({"action": "READ", "callbackContext": "x"}),
        ] {
            let answer = taskrun::handle_value(event.clone()).await;
            common::assert_no_nulls(&answer);
            assert_eq!(answer["status"], "FAILED", "{event}");
            assert!(
                ["InvalidRequest", "NotFound", "InvalidCredentials"]
                    .contains(&answer["errorCode"].as_str().unwrap_or_default()),
                "{event}: {answer}"
            );
        }
        let stale = taskrun::handle_value(json!({"action": "CREATE", "callbackContext": {"bogus": 1},
            "requestData": {"callerCredentials": {"accessKeyId": common::ACCESS_KEY, "secretAccessKey": common::SECRET_KEY}}}))
        .await;
        assert_eq!(stale["errorCode"], "InvalidRequest");
    });
}
