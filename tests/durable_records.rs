//! Run records outlive ECS's memory of stopped tasks. This wipes the emulator's ECS
//! state, so it runs in a process (and an emulator) of its own.

mod common;

use common::{run, World};
use serde_json::{json, Value};

#[test]
fn read_and_list_answer_after_ecs_forgot_everything() {
    run(async {
        let world = World::new("durable").await;
        let cfn = world.cfn("Migrate");
        let mut ids = Vec::new();
        // More records than one LIST page (10), so pagination is exercised.
        for i in 0..12 {
            let op = world
                .cfn(&format!("Run{i}"))
                .create(&world.properties(json!({"Count": i % 3})))
                .await;
            assert_eq!(op.status(), "SUCCESS", "{}", op.message());
            ids.push(op.id());
        }
        let before = cfn.read(&ids[1]).await;
        // A run still going when ECS forgets its cluster.
        world
            .emulator
            .queue_outcome(&world.family, json!({"kind": "never_stops"}), 1);
        let orphan = world.cfn("Orphan");
        let token = common::new_token();
        let props = world.properties(json!({}));
        let first = orphan
            .invoke("CREATE", &token, Some(&props), None, None)
            .await;
        assert_eq!(first["status"], "IN_PROGRESS");

        world
            .emulator
            .control("POST", "/_taskrun/wipe-ecs", Some(json!({})));
        let gone = world
            .emulator
            .ecs()
            .describe_clusters()
            .clusters(&world.cluster)
            .send()
            .await
            .unwrap();
        assert!(
            gone.clusters().is_empty(),
            "the emulator forgot the cluster"
        );

        // The tasks cannot be followed any more: FAILED with the reason, nothing left RUNNING.
        let lost = orphan
            .invoke(
                "CREATE",
                &token,
                Some(&props),
                None,
                Some(&first["callbackContext"]),
            )
            .await;
        assert_eq!(lost["status"], "FAILED", "{lost}");
        assert_eq!(lost["errorCode"], "InvalidRequest", "{lost}");
        assert!(
            lost["message"]
                .as_str()
                .unwrap()
                .contains("could not be followed, so they were stopped"),
            "{lost}"
        );
        let orphan_id = first["resourceModel"]["Id"].as_str().unwrap();
        assert_eq!(
            orphan.read(orphan_id).await.error_code(),
            "NotFound",
            "a failed CREATE leaves no record"
        );

        let after = cfn.read(&ids[1]).await;
        assert_eq!(after.status(), "SUCCESS");
        assert_eq!(
            after.model(),
            before.model(),
            "Read answers from the record alone"
        );
        assert_eq!(after.model()["Tasks"][0]["Containers"][0]["ExitCode"], 0);

        let mut listed: Vec<String> = Vec::new();
        let mut next: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut event =
                cfn.envelope("LIST", &common::new_token(), Some(&json!({})), None, None);
            if let Some(token) = &next {
                event["nextToken"] = json!(token);
            }
            let answer = taskrun::handle_value(event).await;
            common::assert_no_nulls(&answer);
            assert_eq!(answer["status"], "SUCCESS", "{answer}");
            pages += 1;
            for model in answer["resourceModels"].as_array().unwrap() {
                listed.push(model["Id"].as_str().unwrap().to_string());
            }
            match answer.get("nextToken").and_then(Value::as_str) {
                Some(token) => next = Some(token.to_string()),
                None => break,
            }
        }
        assert!(pages >= 2, "12 records take more than one page");
        for id in &ids {
            assert!(listed.contains(id), "{id} missing from LIST");
        }
        // Delete still works: there is nothing left to stop.
        assert_eq!(cfn.delete(&ids[0], &json!({})).await.status(), "SUCCESS");
    });
}
