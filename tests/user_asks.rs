//! What users ask for when a run fails (issue 9), end to end against the emulator, which
//! writes each container's lines into its CloudWatch Logs as awslogs would: the log tail
//! in the stack event, skip on rollback, retries of transient failures, and the task's
//! output for the stack.

mod common;

use common::{new_token, run, World};
use serde_json::{json, Value};

fn exits_with(code: i32, lines: &[&str]) -> Value {
    json!({"kind": "exit", "afterDescribes": 1, "containers": {"app": {"exitCode": code}}, "logs": {"app": lines}})
}

#[test]
fn a_failure_shows_the_failing_container_s_last_lines() {
    run(async {
        let world = World::new("tail").await;
        let family = format!("{}-logs", world.family);
        world
            .register_logging(&family, Some(&format!("/ecs/{family}")))
            .await;
        let mut lines: Vec<String> = (1..=30).map(|i| format!("migration step {i}")).collect();
        lines.push("ERROR: relation \"users\" already exists".into());
        let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
        world
            .emulator
            .queue_outcome(&family, exits_with(3, &refs), 1);
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({"TaskDefinition": family, "LogTail": 5})))
            .await;
        assert_eq!(op.status(), "FAILED", "{:?}", op.events);
        let message = op.message();
        println!("--- the FAILED stack event, as a user sees it ---\n{message}\n---");
        assert!(
            message.contains("container app exited with code 3"),
            "{message}"
        );
        assert!(message.contains("app log, last 5 lines:"), "{message}");
        assert!(
            message.contains("  | ERROR: relation \"users\" already exists"),
            "{message}"
        );
        assert!(
            message.contains("  | migration step 27") && !message.contains("migration step 26\n"),
            "{message}"
        );
        // The same tail in the Tasks output of the model the FAILED event carries.
        let tail = &op.model()["Tasks"][0]["Containers"][0]["LogTail"];
        assert_eq!(tail.as_array().map(Vec::len), Some(5), "{}", op.model());
    });
}

#[test]
fn a_container_without_a_log_stream_says_so_and_a_huge_line_is_cut() {
    run(async {
        let world = World::new("no-logs").await;
        let plain = format!("{}-plain", world.family);
        world.register_logging(&plain, None).await;
        world.emulator.queue_outcome(&plain, exits_with(1, &[]), 1);
        let op = world
            .cfn("NoLogs")
            .create(&world.properties(json!({"TaskDefinition": plain})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert!(
            op.message()
                .contains("no CloudWatch log stream for container app"),
            "{}",
            op.message()
        );

        let logged = format!("{}-huge", world.family);
        world
            .register_logging(&logged, Some(&format!("/ecs/{logged}")))
            .await;
        let huge = format!("panic: {}", "y".repeat(100_000));
        world
            .emulator
            .queue_outcome(&logged, exits_with(2, &["before", &huge]), 1);
        let op = world
            .cfn("Huge")
            .create(&world.properties(json!({"TaskDefinition": logged})))
            .await;
        assert_eq!(op.status(), "FAILED");
        let message = op.message();
        assert!(
            message.len() < 4500,
            "the message stays short: {} bytes",
            message.len()
        );
        assert!(
            message.contains("  | before")
                && message.contains("  | panic: yyy")
                && message.contains('…'),
            "{message}"
        );
    });
}

#[test]
fn a_rollback_update_does_not_run_unless_run_on_rollback() {
    run(async {
        let world = World::new("rollback").await;
        let cfn = world.cfn("Migrate");
        let v1 = world.properties(json!({"Triggers": ["v1"]}));
        let created = cfn.create(&v1).await;
        assert_eq!(created.status(), "SUCCESS");
        let id = created.id();
        let v2 = world.properties(json!({"Triggers": ["v2"]}));
        assert_eq!(cfn.update(&id, &v2, &v1).await.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 2);
        // CloudFormation rolls the stack back: an UPDATE to v1 with rollback: true.
        let rollback = |props: &Value, previous: &Value| {
            let mut desired = props.clone();
            desired["Id"] = json!(id);
            let mut before = previous.clone();
            before["Id"] = json!(id);
            let mut event =
                cfn.envelope("UPDATE", &new_token(), Some(&desired), Some(&before), None);
            event["rollback"] = json!(true);
            event
        };
        let skipped = common::invoke_handler(rollback(&v1, &v2)).await;
        assert_eq!(skipped["status"], "SUCCESS", "{skipped}");
        assert!(
            skipped["message"]
                .as_str()
                .unwrap()
                .contains("rollback and RunOnRollback is false"),
            "{skipped}"
        );
        assert_eq!(skipped["resourceModel"]["Triggers"], json!(["v1"]));
        assert_eq!(
            world.run_task_calls().len(),
            2,
            "the migration was not run backwards"
        );
        // With RunOnRollback, the rollback runs under the usual rules.
        let v3 = world.properties(json!({"Triggers": ["v3"], "RunOnRollback": true}));
        let ran = common::invoke_handler(rollback(&v3, &v1)).await;
        assert_eq!(ran["status"], "SUCCESS", "{ran}");
        assert_eq!(world.run_task_calls().len(), 3);
        // A DELETE during a rollback is any DELETE.
        let mut event = cfn.envelope("DELETE", &new_token(), Some(&json!({"Id": id})), None, None);
        event["rollback"] = json!(true);
        assert_eq!(common::invoke_handler(event).await["status"], "SUCCESS");
    });
}

#[test]
fn a_spot_interruption_is_retried_to_success_with_and_without_fallback() {
    run(async {
        let world = World::new("retry").await;
        for (name, fallback) in [("Plain", false), ("Fallback", true)] {
            world.emulator.queue_outcome(
                &world.family,
                json!({"kind": "exit", "afterDescribes": 1, "stopCode": "SpotInterruption",
                       "stoppedReason": "Your Spot Task was interrupted.", "containers": {"app": {"exitCode": 0}}}),
                1,
            );
            let before = world.run_task_calls().len();
            let props = world.properties(json!({
                "CapacityProviderStrategy": [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}],
                "Retry": {"Attempts": 2, "SpotFallback": fallback}}));
            let op = world.cfn(name).create(&props).await;
            assert_eq!(op.status(), "SUCCESS", "{name}: {:?}", op.events);
            let calls = world.run_task_calls();
            assert_eq!(
                calls.len() - before,
                2,
                "{name}: the first attempt and one retry"
            );
            let retry = &calls[calls.len() - 1];
            let provider = &retry["capacityProviderStrategy"][0]["capacityProvider"];
            assert_eq!(
                provider,
                if fallback { "FARGATE" } else { "FARGATE_SPOT" },
                "{name}: {retry}"
            );
            assert_ne!(
                retry["clientToken"],
                calls[calls.len() - 2]["clientToken"],
                "its own token"
            );
            let tasks = op.model()["Tasks"].as_array().cloned().unwrap_or_default();
            assert_eq!(
                tasks.len(),
                2,
                "every attempt in the outputs: {}",
                op.model()
            );
            assert!(tasks
                .iter()
                .any(|t| t["RetriedBecause"] == "SpotInterruption"
                    && t["StopCode"] == "SpotInterruption"));
            assert!(tasks
                .iter()
                .any(|t| t["Attempt"] == 1 && t["StopCode"] == "EssentialContainerExited"));
            assert_eq!(
                op.model()["TaskArns"].as_array().map(Vec::len),
                Some(1),
                "the task that decided"
            );
        }
    });
}

#[test]
fn retries_run_out_and_a_failed_migration_is_never_retried_by_default() {
    run(async {
        let world = World::new("retry-out").await;
        world.emulator.family_default(
            &world.family,
            json!({"kind": "exit", "afterDescribes": 1, "stopCode": "SpotInterruption", "containers": {"app": {"exitCode": 0}}}),
        );
        let op = world
            .cfn("Spot")
            .create(&world.properties(json!({"Retry": {"Attempts": 2}})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(
            world.run_task_calls().len(),
            3,
            "a first attempt and two retries"
        );
        assert!(
            op.message().contains("SpotInterruption"),
            "{}",
            op.message()
        );

        world.emulator.family_default(
            &world.family,
            json!({"kind": "exit", "afterDescribes": 1, "containers": {"app": {"exitCode": 1}}}),
        );
        let op = world
            .cfn("Exit")
            .create(&world.properties(json!({"Retry": {"Attempts": 5}})))
            .await;
        assert_eq!(op.status(), "FAILED");
        assert_eq!(
            world.run_task_calls().len(),
            4,
            "exit 1 is not retried unless NonZeroExit is listed"
        );
    });
}

#[test]
fn the_task_s_output_is_an_attribute_of_the_resource() {
    run(async {
        let world = World::new("output").await;
        let family = format!("{}-out", world.family);
        world
            .register_logging(&family, Some(&format!("/ecs/{family}")))
            .await;
        let props = world.properties(json!({"TaskDefinition": family}));
        world.emulator.queue_outcome(
            &family,
            exits_with(
                0,
                &[
                    "migrating",
                    "TASKRUN_OUTPUT {\"schemaVersion\": 42}",
                    "done",
                ],
            ),
            1,
        );
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert_eq!(
            op.model()["Output"],
            "{\"schemaVersion\": 42}",
            "Fn::GetAtt Migrate.Output"
        );
        assert_eq!(
            world.cfn("Migrate").read(&op.id()).await.model()["Output"],
            "{\"schemaVersion\": 42}"
        );

        world
            .emulator
            .queue_outcome(&family, exits_with(0, &["no marker"]), 1);
        let op = world.cfn("NoMarker").create(&props).await;
        assert_eq!(op.status(), "SUCCESS");
        assert!(op.model().get("Output").is_none(), "{}", op.model());

        let big = format!("TASKRUN_OUTPUT {}", "z".repeat(5000));
        world
            .emulator
            .queue_outcome(&family, exits_with(0, &[&big]), 1);
        let op = world.cfn("Big").create(&props).await;
        assert_eq!(op.status(), "SUCCESS");
        assert!(op.model().get("Output").is_none());
        assert!(
            op.model()["StatusReason"]
                .as_str()
                .unwrap()
                .starts_with("Output not kept"),
            "{}",
            op.model()
        );
    });
}

/// Says which status CloudFormation shows for the world's stack (DescribeStacks).
fn stack_is(world: &World, status: &str) {
    world.emulator.control(
        "POST",
        "/_taskrun/stacks",
        Some(json!({"stackId": world.stack_id, "status": status})),
    );
}

/// The ecsTasks custom resource of the seed template, converted (`cfn/ecstasks/convert.py`)
/// with its `Ref`s resolved in the test's world (the cluster, the task definition, and the
/// cluster's own container instance in place of the seed's one of another account).
fn converted_migrate_task(world: &World, instance: &Value) -> Value {
    let root = common::repo_root();
    let out = std::process::Command::new(common::python())
        .arg(root.join("cfn/ecstasks/convert.py"))
        .arg(root.join("cfn/ecstasks/tests/fixtures/seed_example.json"))
        .args(["-o", "-"])
        .output()
        .expect("run the converter");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let template: Value = serde_json::from_slice(&out.stdout).expect("a JSON template");
    let resource = &template["Resources"]["MigrateTask"];
    assert_eq!(resource["Type"], json!("Org::ECS::TaskRun"));
    let mut props = resource["Properties"].clone();
    assert_eq!(props["AdoptExisting"], json!(true), "{props}");
    assert_eq!(props["Cluster"], json!({"Ref": "ApplicationCluster"}));
    assert_eq!(
        props["TaskDefinition"],
        json!({"Ref": "ApplicationTaskDefinition"})
    );
    props["Cluster"] = json!(world.cluster);
    props["TaskDefinition"] = json!(world.family);
    props["Instances"] = json!([instance]);
    props["PollInterval"] = json!(1);
    props
}

/// The way off ecsTasks: the converted template deployed as an update of the live stack
/// creates the TaskRun (AdoptExisting) without starting a task, takes its properties as the
/// last run, leaves it alone on an update that changes nothing it watches, and runs the
/// migration when what its UpdateCriteria watch changes (a new DB_HOST).
#[test]
fn a_converted_ecs_tasks_resource_is_adopted_then_runs_on_a_real_change() {
    run(async {
        let world = World::new("adopt").await;
        let registered = world.emulator.control(
            "POST",
            "/_taskrun/container-instances",
            Some(json!({"cluster": world.cluster, "count": 1})),
        );
        let instance = registered["containerInstanceArns"][0].clone();
        let v1 = converted_migrate_task(&world, &instance);
        stack_is(&world, "UPDATE_IN_PROGRESS");
        let cfn = world.cfn("MigrateTask");
        let created = cfn.create(&v1).await;
        assert_eq!(created.status(), "SUCCESS", "{:?}", created.events);
        let reason = created.model()["StatusReason"].as_str().unwrap_or_default();
        assert!(
            reason.contains("adopted") && reason.contains("UPDATE_IN_PROGRESS"),
            "{}",
            created.model()
        );
        assert_eq!(created.model()["Status"], json!("SUCCEEDED"));
        let started = || world.emulator.calls("StartTask", &world.cluster).len();
        assert_eq!(started(), 0, "the adopted migration was run again");
        assert!(world.run_task_calls().is_empty());
        let id = created.id();
        // A later stack update that changes what UpdateCriteria does not watch: nothing.
        stack_is(&world, "UPDATE_COMPLETE");
        let mut v2 = v1.clone();
        v2["Timeout"] = json!(1200);
        let unchanged = cfn.update(&id, &v2, &v1).await;
        assert_eq!(unchanged.status(), "SUCCESS", "{:?}", unchanged.events);
        assert_eq!(started(), 0);
        // DB_HOST changes (a new task definition revision): the migration runs.
        world.register("db2.internal").await;
        let updated = cfn.update(&id, &v2, &v2).await;
        assert_eq!(updated.status(), "SUCCESS", "{:?}", updated.events);
        assert_eq!(started(), 1, "the real change ran the migration once");
        assert_eq!(cfn.delete(&id, &v2).await.status(), "SUCCESS");
    });
}

#[test]
fn adopt_existing_runs_in_a_stack_being_created() {
    run(async {
        let world = World::new("adopt-new").await;
        stack_is(&world, "CREATE_IN_PROGRESS");
        let props = world.properties(json!({"AdoptExisting": true}));
        let created = world.cfn("MigrateTask").create(&props).await;
        assert_eq!(created.status(), "SUCCESS", "{:?}", created.events);
        assert_eq!(world.run_task_calls().len(), 1);
    });
}

/// Without cloudformation:DescribeStacks the handler cannot tell whether the tasks ran
/// already: it fails the CREATE, naming the permission, and runs nothing.
#[test]
fn adopt_existing_without_describe_stacks_fails_and_runs_nothing() {
    run(async {
        let world = World::new("adopt-denied").await;
        stack_is(&world, "UPDATE_IN_PROGRESS");
        let stack_name = world
            .stack_id
            .split('/')
            .nth(1)
            .expect("a stack ARN has a name")
            .to_string();
        world.emulator.fault(
            "cloudformation:DescribeStacks",
            1,
            json!({"code": "AccessDenied", "status": 403, "bodyContains": stack_name,
                   "message": "User is not authorized to perform: cloudformation:DescribeStacks"}),
        );
        let props = world.properties(json!({"AdoptExisting": true}));
        let created = world.cfn("MigrateTask").create(&props).await;
        assert_eq!(created.status(), "FAILED", "{:?}", created.events);
        assert_eq!(created.error_code(), "InvalidRequest");
        assert!(
            created.message().contains("cloudformation:DescribeStacks"),
            "{}",
            created.message()
        );
        assert!(world.run_task_calls().is_empty());
    });
}

/// Undo on rollback (issue 19): a stack update ran the migration with a new task
/// definition revision, a later resource failed, and CloudFormation rolls the stack back.
/// The undo runs OnRollback's command with the revision that ran the migration (not the
/// old one the rollback goes back to), once however often the rollback is delivered; an
/// update that ran nothing leaves nothing to undo; a failing undo is reported and the
/// rollback goes on (the default), or fails it with IfUndoFails FAIL, and then a
/// continue-update-rollback runs it again.
#[test]
fn a_rolled_back_update_is_undone_with_the_task_definition_that_ran_it() {
    run(async {
        let world = World::new("undo").await;
        let cfn = world.cfn("Migrate");
        let old = world.register("db-old").await;
        let new = world.register("db-new").await;
        let undo = |step: u32, extra: Value| {
            let mut on_rollback = json!({"Overrides": {"ContainerOverrides": [
                {"Name": "app", "Command": ["bin/rails", "db:rollback", format!("STEP={step}")]}]}});
            if let (Some(map), Value::Object(extra)) = (on_rollback.as_object_mut(), extra) {
                map.extend(extra);
            }
            on_rollback
        };
        let v1 = world.properties(json!({"TaskDefinition": old}));
        let created = cfn.create(&v1).await;
        assert_eq!(created.status(), "SUCCESS", "{:?}", created.last());
        let id = created.id();
        let v2 = world.properties(json!({"TaskDefinition": new, "OnRollback": undo(1, json!({}))}));
        assert_eq!(cfn.update(&id, &v2, &v1).await.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 2);

        let token = new_token();
        let rolled_back = cfn.rollback(&token, &id, &v1, &v2).await;
        assert_eq!(rolled_back.status(), "SUCCESS", "{:?}", rolled_back.last());
        let calls = world.run_task_calls();
        assert_eq!(calls.len(), 3, "the undo ran one task");
        assert_eq!(
            calls[2]["taskDefinition"],
            json!(new),
            "with the revision that migrated"
        );
        assert_eq!(calls[2]["count"], json!(1));
        assert_eq!(
            calls[2]["overrides"]["containerOverrides"][0]["command"],
            json!(["bin/rails", "db:rollback", "STEP=1"])
        );
        assert_eq!(
            rolled_back.model()["TaskDefinition"],
            json!(old),
            "the model is the rollback's"
        );
        assert!(
            rolled_back.model().get("OnRollback").is_none(),
            "write-only"
        );
        // Delivered again (the same operation): followed, not run again.
        let again = cfn.rollback(&token, &id, &v1, &v2).await;
        assert_eq!(again.status(), "SUCCESS");
        // Another rollback from the same properties finds nothing left to undo.
        let other = cfn.rollback(&new_token(), &id, &v1, &v2).await;
        assert_eq!(other.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 3, "the undo ran once");

        // An update that ran nothing (only OnRollback changed: nothing that shapes the
        // tasks) leaves nothing to undo, though the run before it did succeed.
        let v3 = world.properties(
            json!({"TaskDefinition": new, "Triggers": ["v3"], "OnRollback": undo(1, json!({}))}),
        );
        assert_eq!(cfn.update(&id, &v3, &v1).await.status(), "SUCCESS");
        let v3b = world.properties(
            json!({"TaskDefinition": new, "Triggers": ["v3"], "OnRollback": undo(2, json!({}))}),
        );
        assert_eq!(cfn.update(&id, &v3b, &v3).await.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 4);
        let nothing = cfn.rollback(&new_token(), &id, &v3, &v3b).await;
        assert_eq!(nothing.status(), "SUCCESS");
        assert_eq!(world.run_task_calls().len(), 4, "nothing undone");

        // A failing undo, by default: reported, the rollback goes on.
        let v4 = world.properties(
            json!({"TaskDefinition": new, "Triggers": ["v4"], "OnRollback": undo(1, json!({}))}),
        );
        assert_eq!(cfn.update(&id, &v4, &v3).await.status(), "SUCCESS");
        world
            .emulator
            .queue_outcome(&world.family, exits_with(1, &[]), 1);
        let reported = cfn.rollback(&new_token(), &id, &v3, &v4).await;
        assert_eq!(reported.status(), "SUCCESS", "{:?}", reported.last());
        assert!(
            reported.message().contains("the undo failed"),
            "{}",
            reported.message()
        );
        assert_eq!(reported.model()["Status"], "FAILED");
        assert_eq!(world.run_task_calls().len(), 6);

        // IfUndoFails FAIL: the rollback fails (UPDATE_ROLLBACK_FAILED); continuing the
        // rollback (a new operation from the same properties) runs the undo again.
        let v5 = world.properties(json!({"TaskDefinition": new, "Triggers": ["v5"],
            "OnRollback": undo(1, json!({"IfUndoFails": "FAIL"}))}));
        assert_eq!(cfn.update(&id, &v5, &v3).await.status(), "SUCCESS");
        world
            .emulator
            .queue_outcome(&world.family, exits_with(1, &[]), 1);
        let failed = cfn.rollback(&new_token(), &id, &v3, &v5).await;
        assert_eq!(failed.status(), "FAILED", "{:?}", failed.last());
        assert_eq!(world.run_task_calls().len(), 8);
        let continued = cfn.rollback(&new_token(), &id, &v3, &v5).await;
        assert_eq!(continued.status(), "SUCCESS", "{:?}", continued.last());
        let calls = world.run_task_calls();
        assert_eq!(calls.len(), 9, "the undo ran again");
        assert_eq!(
            calls[8]["overrides"]["containerOverrides"][0]["command"],
            json!(["bin/rails", "db:rollback", "STEP=1"])
        );
    });
}

/// Each task's (startedBy, createdAt, stoppedAt), as DescribeTasks shows them.
async fn task_times(world: &World) -> Vec<(String, f64, f64)> {
    let arns: Vec<String> = world
        .tasks()
        .iter()
        .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
        .collect();
    let described = world
        .emulator
        .ecs()
        .describe_tasks()
        .cluster(&world.cluster)
        .set_tasks(Some(arns))
        .send()
        .await
        .expect("describe tasks");
    described
        .tasks()
        .iter()
        .map(|t| {
            (
                t.started_by().unwrap_or_default().to_string(),
                t.created_at().expect("createdAt").as_secs_f64(),
                t.stopped_at().expect("every task stopped").as_secs_f64(),
            )
        })
        .collect()
}

fn waited(op: &common::Operation) -> bool {
    op.events.iter().any(|e| {
        e["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("waiting for lock"))
    })
}

#[test]
fn two_stacks_with_one_lock_take_turns() {
    run(async {
        let world = World::new("lock").await;
        let lock = test_support::cfn::unique("orders-db");
        // Each task runs 3 s of the emulator's clock (the wall clock).
        world.emulator.family_default(
            &world.family,
            json!({"kind": "exit", "afterSeconds": 3, "containers": {"app": {"exitCode": 0}}}),
        );
        let tenant_a = world.cfn("Migrate");
        let mut tenant_b = world.cfn("Migrate");
        tenant_b.stack_id = tenant_a.stack_id.replace("/0a1b2c3d", "/tenant-b");
        let props = world.properties(json!({"Count": 2, "Lock": {"Name": lock}}));
        let (a, b) = tokio::join!(tenant_a.create(&props), tenant_b.create(&props));
        assert_eq!(a.status(), "SUCCESS", "{:?}", a.last());
        assert_eq!(b.status(), "SUCCESS", "{:?}", b.last());
        let (first, second) = if waited(&b) { (&a, &b) } else { (&b, &a) };
        assert!(waited(second), "one of the two waited for the lock");
        let message = second
            .events
            .iter()
            .find_map(|e| {
                e["message"]
                    .as_str()
                    .filter(|m| m.starts_with("waiting for lock"))
            })
            .unwrap_or_default();
        println!("--- the waiting run's IN_PROGRESS message ---\n{message}\n---");
        assert!(
            message.contains(&first.id()) && message.contains("since"),
            "the message names the holder and since when: {message}"
        );
        // By the emulator's task times: the second TaskRun's tasks started after the
        // first's had all stopped.
        let times = task_times(&world).await;
        assert_eq!(times.len(), 4, "{times:?}");
        let of = |id: &str| -> (f64, f64) {
            let mine: Vec<_> = times.iter().filter(|t| t.0 == id).collect();
            assert_eq!(mine.len(), 2, "{id}: {times:?}");
            (
                mine.iter().map(|t| t.1).fold(f64::MAX, f64::min),
                mine.iter().map(|t| t.2).fold(f64::MIN, f64::max),
            )
        };
        let (_, first_stopped) = of(&first.id());
        let (second_created, _) = of(&second.id());
        assert!(
            second_created >= first_stopped,
            "the second started at {second_created} before the first's tasks stopped at {first_stopped}"
        );

        // A run that fails frees the lock too, and an update waits for nobody once it is
        // free: the first tenant's failing update, then the second's.
        world.emulator.queue_outcome(
            &world.family,
            json!({"kind": "exit", "afterSeconds": 1, "containers": {"app": {"exitCode": 1}}}),
            2,
        );
        let failing =
            world.properties(json!({"Count": 2, "Lock": {"Name": lock}, "Triggers": ["2"]}));
        let failed = tenant_a.update(&first.id(), &failing, &props).await;
        assert_eq!(failed.status(), "FAILED", "{:?}", failed.last());
        let next = tenant_b.update(&second.id(), &failing, &props).await;
        assert_eq!(next.status(), "SUCCESS", "{:?}", next.last());
        assert!(!waited(&next), "the failed run freed the lock");

        // Deleted, neither holds it: a third stack's run takes it at once.
        let id_a = first.id();
        let id_b = second.id();
        assert_eq!(tenant_a.delete(&id_a, &failing).await.status(), "SUCCESS");
        assert_eq!(tenant_b.delete(&id_b, &failing).await.status(), "SUCCESS");
        let mut tenant_c = world.cfn("Migrate");
        tenant_c.stack_id = tenant_a.stack_id.replace("/0a1b2c3d", "/tenant-c");
        let third = tenant_c.create(&props).await;
        assert_eq!(third.status(), "SUCCESS", "{:?}", third.last());
        assert!(!waited(&third), "{:?}", third.events);
    });
}
