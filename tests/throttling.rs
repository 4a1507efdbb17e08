//! Throttling, in a process (and so an emulator) of its own: throttles are per API, and
//! the lifecycle tests running beside it would take some of them.

mod common;

use common::{new_token, run, World};
use serde_json::json;

#[test]
fn throttling_is_survived() {
    run(async {
        let world = World::new("throttle").await;
        // Two throttled calls of each: the SDK's retries absorb them.
        world.emulator.control(
            "POST",
            "/_taskrun/throttle",
            Some(json!({"api": "RunTask", "times": 2})),
        );
        let op = world
            .cfn("Migrate")
            .create(&world.properties(json!({})))
            .await;
        assert_eq!(op.status(), "SUCCESS", "{}", op.message());
        // More throttled DescribeTasks than the SDK retries: the callback answers
        // IN_PROGRESS and looks again, instead of failing the deploy.
        world.emulator.queue_outcome(
            &world.family,
            json!({"kind": "exit", "afterDescribes": 0}),
            1,
        );
        let cfn = world.cfn("Again");
        let props = world.properties(json!({}));
        let token = new_token();
        world.fault("DescribeTasks", 200, json!({}));
        let throttled = cfn.invoke("CREATE", &token, Some(&props), None, None).await;
        assert_eq!(throttled["status"], "IN_PROGRESS", "{throttled}");
        assert!(
            throttled["message"]
                .as_str()
                .unwrap_or_default()
                .contains("will look again: ecs:DescribeTasks failed: ThrottlingException"),
            "{throttled}"
        );
        assert!(throttled["resourceModel"]["Id"].is_string(), "{throttled}");
        world.fault("DescribeTasks", 0, json!({}));
        let done = cfn
            .invoke(
                "CREATE",
                &token,
                Some(&props),
                None,
                Some(&throttled["callbackContext"]),
            )
            .await;
        assert_eq!(done["status"], "SUCCESS", "{done}");
    });
}
