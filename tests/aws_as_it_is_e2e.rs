//! AWS as it really is, end to end: the real binary against the emulator with its AWS
//! behaviours switched on for the test's own cluster or log group (`POST
//! /_taskrun/behaviours`, see `emulator/README.md`). The emulator also refuses, as AWS
//! does, every request that breaks the services' published models or documented limits,
//! so each of these tests fails if the handler sends one.

mod common;

use std::time::Instant;

use common::{run, World};
use serde_json::{json, Value};

fn exits_with(code: i32, lines: &[&str]) -> Value {
    json!({"kind": "exit", "afterDescribes": 1, "containers": {"app": {"exitCode": code}}, "logs": {"app": lines}})
}

fn behave(world: &World, settings: Value) {
    world
        .emulator
        .control("POST", "/_taskrun/behaviours", Some(settings));
}

fn hits(world: &World, scope: &str) -> Value {
    world.emulator.control("GET", "/_taskrun/behaviours", None)["hits"][scope].clone()
}

/// DescribeTasks shows STOPPING, DEPROVISIONING (awsvpc) and then DELETED: a task that
/// exited 0 is seen stopped through all of them.
#[test]
fn a_task_shown_deprovisioning_then_deleted_succeeds() {
    run(async {
        let world = World::new("deleted").await;
        behave(
            &world,
            json!({"cluster": world.cluster, "stopping": {"describes": 1},
                   "deprovisioning": {"describes": 1}, "deleted": {"describes": 0}}),
        );
        let props = world.properties(json!({"NetworkConfiguration": {"AwsvpcConfiguration": {
            "Subnets": ["subnet-0123456789abcdef0"]}}, "LaunchType": "FARGATE"}));
        let op = world.cfn("Migrate").create(&props).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        let seen = hits(&world, &format!("cluster:{}", world.cluster));
        assert!(seen["deleted"].as_u64() > Some(0), "{seen}");
    });
}

/// A task ECS does not show for a while after RunTask is followed, not failed.
#[test]
fn a_task_not_visible_at_first_is_followed() {
    run(async {
        let world = World::new("invisible").await;
        behave(
            &world,
            json!({"cluster": world.cluster, "invisibleSeconds": 3}),
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
    });
}

/// GetLogEvents pages partial and empty, the last line late (within the handler's
/// `LATE_LOG_SECONDS` of 1.5 s; a line later than that is said missing, as
/// `row_3_an_output_line_too_late_is_said_missing` checks): the Output is read whole.
#[test]
fn output_is_read_from_partial_empty_and_late_pages() {
    run(async {
        let world = World::new("pages").await;
        let family = format!("{}-out", world.family);
        let group = format!("/ecs/{family}");
        world.register_logging(&family, Some(&group)).await;
        behave(
            &world,
            json!({"logGroup": group, "logPages": {"pageLimit": 1, "emptyPages": 2},
                   "lateLines": {"seconds": 1, "lines": 1}}),
        );
        world.emulator.queue_outcome(
            &family,
            exits_with(0, &["migrating", "done", "TASKRUN_OUTPUT {\"version\": 7}"]),
            1,
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({"TaskDefinition": family})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert_eq!(op.model()["Output"], "{\"version\": 7}", "{}", op.model());
    });
}

/// RunTask's ClientException for the PROVISIONING quota is waited out.
#[test]
fn the_provisioning_quota_is_waited_out() {
    run(async {
        let world = World::new("quota").await;
        behave(
            &world,
            json!({"cluster": world.cluster, "provisioningQuota": {"times": 2}}),
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        assert_eq!(
            world.run_task_calls().len(),
            3,
            "refused twice, then started"
        );
    });
}

/// Stack tags ECS would refuse, and those beyond 50, are left off: RunTask is accepted.
#[test]
fn stack_tags_ecs_would_refuse_are_left_off() {
    run(async {
        let world = World::new("stacktags").await;
        let mut cfn = world.cfn("Migrate");
        let mut tags: serde_json::Map<String, Value> = (0..50)
            .map(|i| (format!("stack-{i:02}"), json!("v")))
            .collect();
        tags.insert("Owner (team)".into(), json!("data, eng"));
        cfn.stack_tags = Value::Object(tags);
        let own: Vec<Value> = (0..10)
            .map(|i| json!({"Key": format!("own-{i}"), "Value": "o"}))
            .collect();
        let op = cfn.create(&world.properties(json!({"Tags": own}))).await;
        assert_eq!(op.status(), "SUCCESS", "{:?}", op.events);
        let calls = world.run_task_calls();
        let tags = calls[0]["tags"].as_array().cloned().unwrap_or_default();
        assert_eq!(tags.len(), 50, "{tags:?}");
    });
}

/// A refusal that started nothing answers at once: no 15 s sweep.
#[test]
fn a_misspelt_cluster_fails_at_once() {
    run(async {
        let world = World::new("misspelt").await;
        let began = Instant::now();
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({"Cluster": format!("{}-typo", world.cluster)})))
            .await;
        assert_eq!(op.status(), "FAILED", "{:?}", op.events);
        assert_eq!(op.events.len(), 1, "answered in the first invocation");
        assert!(began.elapsed().as_secs_f64() < 10.0);
        assert!(op.message().contains("ClusterNotFound"), "{}", op.message());
    });
}
