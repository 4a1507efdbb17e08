//! The handler's logs and metrics where the resource type's operators look: the log
//! group CloudFormation names in `requestData.providerLogGroupName`, written with
//! `requestData.providerCredentials`, as the Java, Python and Go plugins do.
//!
//! - One stream per stack and resource (`<stackId>/<logicalResourceId>`, `:` written as
//!   `__`, as the Python plugin names it), created on demand with its group.
//! - One PutLogEvents per invocation: the invocation's log lines, then its metrics in
//!   CloudWatch's embedded metric format (EMF), so that no other service is needed:
//!   namespace `CloudFormation/<type name with :: as />`, `HandlerInvocationCount`,
//!   `HandlerInvocationDuration` (milliseconds) and, for a FAILED answer,
//!   `HandlerException`, by `Action` and `ResourceType` (and `ExceptionType`, the error
//!   code), the names the other plugins publish.
//! - Bounded in time (it never delays the answer past the budget) and never failing the
//!   operation: a delivery problem is noted on stderr, Lambda's own log, and dropped.

use aws_config::Region;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_credential_types::Credentials;
use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use cfn_protocol::{HandlerRequest, Invocation, OperationStatus};
use serde_json::{json, Value};

use crate::aws::{base_config, by_deadline, fault};
use crate::fault::{Fault, FaultKind};

/// CloudWatch Logs' limit for one PutLogEvents (1 MiB, each event counting 26 bytes more).
const MAX_BATCH_BYTES: usize = 1_000_000;

/// The stream of one stack's resource.
pub fn stream_name(request: &HandlerRequest) -> String {
    let name = match (&request.stack_id, &request.request_data.logical_resource_id) {
        (Some(stack), Some(logical)) => format!("{stack}/{logical}"),
        _ => format!(
            "{}-{}",
            request.aws_account_id.as_deref().unwrap_or("account"),
            request.region.as_deref().unwrap_or("region")
        ),
    };
    // ':' and '*' are not allowed in stream names; 512 characters at most.
    name.replace(':', "__")
        .replace('*', "_")
        .chars()
        .take(512)
        .collect()
}

/// The metrics' namespace: `CloudFormation/<type name with :: as />`. Not under `AWS/`:
/// "You cannot specify a namespace that begins with "AWS/". Namespaces that begin with
/// "AWS/" are reserved for use by Amazon Web Services products." (AWS SDK for Java
/// Developer Guide, "Publish custom metric data to CloudWatch"; CloudWatch API Reference,
/// PutMetricData, `Namespace`: "To avoid conflicts with Amazon Web Services service
/// namespaces, you should not specify a namespace that begins with AWS/").
pub fn namespace(type_name: &str) -> String {
    format!("CloudFormation/{}", type_name.replace("::", "/"))
}

/// The EMF lines of one invocation.
pub fn metrics(type_name: &str, invocation: &Invocation, at_ms: i64) -> Vec<String> {
    let action = invocation.action.map_or("NO_ACTION", |a| a.as_str());
    let namespace = namespace(type_name);
    let mut lines = vec![json!({
        "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{
            "Namespace": namespace,
            "Dimensions": [["Action", "ResourceType"]],
            "Metrics": [
                {"Name": "HandlerInvocationCount", "Unit": "Count"},
                {"Name": "HandlerInvocationDuration", "Unit": "Milliseconds"},
            ],
        }]},
        "Action": action,
        "ResourceType": type_name,
        "HandlerInvocationCount": 1,
        "HandlerInvocationDuration": invocation.duration.as_millis() as u64,
    })
    .to_string()];
    if invocation.event.status == OperationStatus::Failed {
        let code = invocation
            .event
            .error_code
            .map_or("Unknown", |c| c.as_str());
        lines.push(
            json!({
                "_aws": {"Timestamp": at_ms, "CloudWatchMetrics": [{
                    "Namespace": namespace,
                    "Dimensions": [["Action", "ExceptionType", "ResourceType"]],
                    "Metrics": [{"Name": "HandlerException", "Unit": "Count"}],
                }]},
                "Action": action,
                "ExceptionType": code,
                "ResourceType": type_name,
                "HandlerException": 1,
            })
            .to_string(),
        );
    }
    lines
}

/// Ships `lines` and the invocation's metrics; returns by `by` (epoch seconds) whatever
/// happens. Nothing is shipped when the request names no log group or brings no
/// usable provider credentials.
pub async fn ship(
    type_name: &str,
    request: &HandlerRequest,
    invocation: &Invocation,
    lines: Vec<(i64, String)>,
    by: f64,
) {
    let Some(group) = request
        .request_data
        .provider_log_group_name
        .as_deref()
        .filter(|g| !g.is_empty())
    else {
        return;
    };
    let Some(credentials) = request.request_data.provider_credentials.as_ref() else {
        return;
    };
    let Ok(credentials) = credentials.usable() else {
        eprintln!("provider log: the provider credentials are not usable; nothing shipped");
        return;
    };
    let now = crate::logging::epoch_millis();
    let mut events: Vec<InputLogEvent> = Vec::new();
    let mut bytes = 0;
    let entries = lines.into_iter().chain(
        metrics(type_name, invocation, now)
            .into_iter()
            .map(|m| (now, m)),
    );
    for (at, text) in entries {
        let text = if text.is_empty() {
            " ".to_string()
        } else {
            text
        };
        bytes += text.len() + 26;
        if bytes > MAX_BATCH_BYTES {
            break;
        }
        if let Ok(event) = InputLogEvent::builder().timestamp(at).message(text).build() {
            events.push(event);
        }
    }
    // Chronological order, as CloudWatch Logs requires.
    events.sort_by_key(|e| e.timestamp);
    let mut config =
        base_config()
            .await
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
                credentials.access_key_id,
                credentials.secret_access_key,
                credentials.session_token.map(str::to_string),
                None,
                "cloudformation-provider",
            )));
    if let Some(region) = request
        .region
        .as_deref()
        .filter(|r| crate::aws::valid_region(r))
    {
        config = config.region(Region::new(region.to_string()));
    }
    let client = aws_sdk_cloudwatchlogs::Client::new(&config.build());
    let stream = stream_name(request);
    let result = by_deadline(
        "logs:PutLogEvents",
        by,
        deliver(&client, group, &stream, events),
    )
    .await;
    if let Err(e) = result {
        eprintln!("provider log: not delivered to {group}: {e}");
    }
}

async fn deliver(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: Vec<InputLogEvent>,
) -> Result<(), Fault> {
    match put(client, group, stream, events.clone()).await {
        Err(f) if f.kind == FaultKind::NotFound => {
            // The group or the stream does not exist yet: create them, then put again.
            if f.message.contains("group") {
                ignore_exists(
                    client
                        .create_log_group()
                        .log_group_name(group)
                        .send()
                        .await
                        .map(|_| ())
                        .map_err(|e| fault("logs:CreateLogGroup", e)),
                )?;
            }
            ignore_exists(
                client
                    .create_log_stream()
                    .log_group_name(group)
                    .log_stream_name(stream)
                    .send()
                    .await
                    .map(|_| ())
                    .map_err(|e| fault("logs:CreateLogStream", e)),
            )?;
            put(client, group, stream, events).await
        }
        other => other,
    }
}

async fn put(
    client: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    events: Vec<InputLogEvent>,
) -> Result<(), Fault> {
    client
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .customize()
        // Tells CloudWatch to read the EMF lines as metrics.
        .mutate_request(|request| {
            request
                .headers_mut()
                .insert("x-amzn-logs-format", "json/emf");
        })
        .send()
        .await
        .map(|_| ())
        .map_err(|e| fault("logs:PutLogEvents", e))
}

fn ignore_exists(result: Result<(), Fault>) -> Result<(), Fault> {
    match result {
        Err(f) if f.message.contains("ResourceAlreadyExistsException") => Ok(()),
        other => other,
    }
}

/// What the metrics of an invocation say, for tests.
pub fn metric_names(line: &str) -> Vec<String> {
    serde_json::from_str::<Value>(line)
        .ok()
        .and_then(|v| {
            v["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|m| m["Name"].as_str().map(str::to_string))
                        .collect()
                })
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfn_protocol::{Action, HandlerErrorCode, ProgressEvent};
    use serde_json::json;

    #[test]
    fn names_streams_as_the_python_plugin_does() {
        let request = HandlerRequest::decode(&json!({"action": "CREATE",
            "stackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/6f1b",
            "requestData": {"logicalResourceId": "Migrate"}}))
        .unwrap();
        assert_eq!(
            stream_name(&request),
            "arn__aws__cloudformation__us-east-1__123456789012__stack/shop/6f1b/Migrate"
        );
        let bare = HandlerRequest::decode(
            &json!({"action": "LIST", "awsAccountId": "1", "region": "eu-west-1"}),
        )
        .unwrap();
        assert_eq!(stream_name(&bare), "1-eu-west-1");
    }

    #[test]
    fn publishes_the_metrics_the_other_plugins_do() {
        let invocation = Invocation {
            action: Some(Action::Update),
            event: ProgressEvent::failed(HandlerErrorCode::NotStabilized, "x"),
            duration: std::time::Duration::from_millis(1234),
            panicked: false,
        };
        let lines = metrics("Org::ECS::TaskRun", &invocation, 1_700_000_000_000);
        assert_eq!(lines.len(), 2);
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(
            first["_aws"]["CloudWatchMetrics"][0]["Namespace"],
            "CloudFormation/Org/ECS/TaskRun"
        );
        assert_eq!(first["HandlerInvocationDuration"], 1234);
        assert_eq!(first["Action"], "UPDATE");
        assert_eq!(metric_names(&lines[1]), vec!["HandlerException"]);
        let second: Value = serde_json::from_str(&lines[1]).unwrap();
        assert_eq!(second["ExceptionType"], "NotStabilized");
    }
}
