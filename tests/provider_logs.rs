//! The handler's logs and metrics reach the log group CloudFormation names, written with
//! the provider credentials, and read back from the emulator's CloudWatch Logs.

mod common;

use common::{run, World};
use serde_json::{json, Value};

fn logs_client(url: &str) -> aws_sdk_cloudwatchlogs::Client {
    let config = aws_sdk_cloudwatchlogs::Config::builder()
        .behavior_version_latest()
        .endpoint_url(url)
        .region(aws_sdk_cloudwatchlogs::config::Region::new(common::REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            common::ACCESS_KEY,
            common::SECRET_KEY,
            None,
            None,
            "t",
        ))
        .http_client(taskrun::aws::https_client())
        .build();
    aws_sdk_cloudwatchlogs::Client::from_conf(config)
}

#[test]
fn logs_and_metrics_go_to_the_provider_log_group() {
    // The handler's own subscriber, as in Lambda: it copies each line for the provider log.
    handler_kit::logging::init();
    run(async {
        let world = World::new("provider-logs").await;
        let cfn = world.cfn("Migrate");
        let group = format!("taskrun-provider-logs-{}", world.cluster);
        let props = world.properties(json!({"Overrides": {"ContainerOverrides": [{"Name": "app",
            "Environment": [{"Name": "DB_PASSWORD", "Value": "hunter2-override"}]}]}}));
        let mut event = cfn.envelope("CREATE", &common::new_token(), Some(&props), None, None);
        event["requestData"]["providerLogGroupName"] = json!(group);
        let answer = common::invoke_handler(event).await;
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
        let id = answer["resourceModel"]["Id"].as_str().unwrap().to_string();

        let logs = logs_client(&world.emulator.url);
        let stream = format!("{}/Migrate", world.stack_id).replace(':', "__");
        let events = logs
            .get_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .start_from_head(true)
            .send()
            .await
            .expect("the stream was created on demand with its group");
        let lines: Vec<String> = events
            .events()
            .iter()
            .filter_map(|e| e.message().map(str::to_string))
            .collect();
        let text = lines.join("\n");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("run succeeded") && l.contains(&id)),
            "{text}"
        );
        let metrics: Vec<Value> = lines
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v.get("_aws").is_some())
            .collect();
        assert_eq!(metrics.len(), 1, "{text}");
        assert_eq!(
            metrics[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "CloudFormation/Org/ECS/TaskRun"
        );
        assert_eq!(metrics[0]["Action"], "CREATE");
        assert_eq!(metrics[0]["HandlerInvocationCount"], 1);
        assert!(metrics[0]["HandlerInvocationDuration"].as_u64().is_some());
        for secret in [common::SECRET_KEY, "hunter2-override", "session"] {
            assert!(
                !text.contains(secret),
                "the provider log holds {secret}: {text}"
            );
        }

        // A FAILED answer counts as a HandlerException, by error code.
        let mut bad = cfn.envelope(
            "READ",
            &common::new_token(),
            Some(&json!({"Id": "Migrate-0000000000000000"})),
            None,
            None,
        );
        bad["requestData"]["providerLogGroupName"] = json!(group);
        bad["stackId"] = json!(world.stack_id);
        let answer = common::invoke_handler(bad).await;
        assert_eq!(answer["errorCode"], "NotFound");
        let events = logs
            .get_log_events()
            .log_group_name(&group)
            .log_stream_name(&stream)
            .start_from_head(true)
            .send()
            .await
            .expect("stream");
        let exceptions: Vec<Value> = events
            .events()
            .iter()
            .filter_map(|e| serde_json::from_str::<Value>(e.message().unwrap_or_default()).ok())
            .filter(|v| v.get("HandlerException").is_some())
            .collect();
        assert_eq!(exceptions.len(), 1);
        assert_eq!(exceptions[0]["ExceptionType"], "NotFound");
        assert_eq!(exceptions[0]["Action"], "READ");

        // Logging that cannot be delivered never fails the operation.
        world
            .emulator
            .fault("logs:PutLogEvents", 20, json!({"status": 503}));
        let mut event = cfn.envelope("LIST", &common::new_token(), None, None, None);
        event["requestData"]["providerLogGroupName"] = json!(group);
        let answer = common::invoke_handler(event).await;
        world.emulator.fault("logs:PutLogEvents", 0, json!({}));
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
    });
}
