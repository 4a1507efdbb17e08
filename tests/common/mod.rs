//! End-to-end harness of TaskRun: the shared emulator and local Lambda (`local.rs`), and a
//! driver that invokes the handler the way CloudFormation does (`test_support::cfn`):
//! string-typed scalars, re-invocation with the returned callbackContext after
//! callbackDelaySeconds (scaled down), the same bearer token for one operation.
#![allow(dead_code)]

pub mod events;
mod local;

pub use local::*;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_support::cfn::{scaled, unique, Call, Template};

pub use test_support::cfn::{assert_no_nulls, new_token};

/// One test's ECS world: its own cluster and task definition family on the shared emulator.
pub struct World {
    pub emulator: &'static Emulator,
    pub cluster: String,
    pub family: String,
    pub stack_id: String,
}

impl World {
    /// A cluster and a task definition with an essential `app` (DB_HOST in its environment)
    /// and a non-essential `log-router` sidecar.
    pub async fn new(name: &str) -> World {
        let emulator = Emulator::shared();
        let world = World {
            emulator,
            cluster: unique(&format!("c-{name}")),
            family: unique(name),
            stack_id: format!(
                "arn:aws:cloudformation:{REGION}:123456789012:stack/{}/0a1b2c3d",
                unique("stack")
            ),
        };
        let ecs = emulator.ecs();
        ecs.create_cluster()
            .cluster_name(&world.cluster)
            .send()
            .await
            .expect("create cluster");
        world.register("db.internal").await;
        world
    }

    /// Registers a new revision whose `app` container has the given DB_HOST; returns its ARN.
    pub async fn register(&self, db_host: &str) -> String {
        use aws_sdk_ecs::types::{ContainerDefinition, KeyValuePair};
        let out = self
            .emulator
            .ecs()
            .register_task_definition()
            .family(&self.family)
            .container_definitions(
                ContainerDefinition::builder()
                    .name("app")
                    .image("example/migrate:1")
                    .memory(256)
                    .essential(true)
                    .environment(
                        KeyValuePair::builder()
                            .name("DB_HOST")
                            .value(db_host)
                            .build(),
                    )
                    .build(),
            )
            .container_definitions(
                ContainerDefinition::builder()
                    .name("log-router")
                    .image("amazon/aws-for-fluent-bit:stable")
                    .memory(64)
                    .essential(false)
                    .build(),
            )
            .send()
            .await
            .expect("register task definition");
        out.task_definition()
            .and_then(|d| d.task_definition_arn())
            .expect("task definition ARN")
            .to_string()
    }

    /// Registers `family` whose `app` logs to CloudWatch Logs (awslogs, group and stream
    /// prefix as given; `None` for no log configuration at all).
    pub async fn register_logging(&self, family: &str, group: Option<&str>) {
        use aws_sdk_ecs::types::{ContainerDefinition, LogConfiguration, LogDriver};
        let mut app = ContainerDefinition::builder()
            .name("app")
            .image("example/migrate:1")
            .memory(256)
            .essential(true);
        if let Some(group) = group {
            app = app.log_configuration(
                LogConfiguration::builder()
                    .log_driver(LogDriver::Awslogs)
                    .options("awslogs-group", group)
                    .options("awslogs-stream-prefix", "migrate")
                    .options("awslogs-region", REGION)
                    .build()
                    .expect("log configuration"),
            );
        }
        self.emulator
            .ecs()
            .register_task_definition()
            .family(family)
            .container_definitions(app.build())
            .send()
            .await
            .expect("register task definition");
    }

    pub fn properties(&self, extra: Value) -> Value {
        let mut props =
            json!({"Cluster": self.cluster, "TaskDefinition": self.family, "PollInterval": 1});
        if let (Some(map), Value::Object(extra)) = (props.as_object_mut(), extra) {
            map.extend(extra);
        }
        props
    }

    pub fn cfn(&self, logical_id: &str) -> Cfn {
        Cfn {
            stack_id: self.stack_id.clone(),
            logical_id: logical_id.to_string(),
            stack_tags: json!({"team": "platform"}),
        }
    }

    /// A fault on this world's calls only (their bodies name its cluster): see
    /// [`Emulator::fault`].
    pub fn fault(&self, api: &str, times: u32, mut extra: Value) {
        extra["bodyContains"] = json!(self.cluster);
        self.emulator.fault(api, times, extra);
    }

    pub fn run_task_calls(&self) -> Vec<Value> {
        self.emulator.calls("RunTask", &self.cluster)
    }

    pub fn tasks(&self) -> Vec<Value> {
        self.emulator.tasks(&self.cluster)
    }
}

/// What one operation produced: every progress event, in order.
#[derive(Debug)]
pub struct Operation {
    pub events: Vec<Value>,
    pub elapsed: Duration,
}

impl Operation {
    pub fn last(&self) -> &Value {
        self.events.last().expect("at least one event")
    }
    pub fn status(&self) -> &str {
        self.last()["status"].as_str().unwrap_or_default()
    }
    pub fn error_code(&self) -> &str {
        self.last()["errorCode"].as_str().unwrap_or_default()
    }
    pub fn message(&self) -> &str {
        self.last()["message"].as_str().unwrap_or_default()
    }
    pub fn model(&self) -> &Value {
        &self.last()["resourceModel"]
    }
    pub fn id(&self) -> String {
        self.events
            .iter()
            .find_map(|e| e["resourceModel"]["Id"].as_str())
            .expect("an event with the Id")
            .to_string()
    }
}

/// Plays CloudFormation for one logical resource of one stack.
pub struct Cfn {
    pub stack_id: String,
    pub logical_id: String,
    /// The stack's tags, as CloudFormation passes them (`requestData.stackTags`).
    pub stack_tags: Value,
}

impl Cfn {
    pub fn envelope(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        context: Option<&Value>,
    ) -> Value {
        let template = Template {
            head: json!({
                "awsAccountId": "123456789012",
                "region": REGION,
                "resourceType": "Org::ECS::TaskRun",
                "resourceTypeVersion": "00000001",
                "stackId": self.stack_id,
            }),
            request_data: json!({
                "callerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
                "providerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
                "providerLogGroupName": "taskrun-provider-logs",
                "logicalResourceId": self.logical_id,
                "systemTags": {"aws:cloudformation:stack-id": self.stack_id, "aws:cloudformation:logical-id": self.logical_id},
                "stackTags": self.stack_tags,
            }),
            strings: true,
        };
        template.envelope(&Call {
            action,
            token,
            properties,
            previous,
            context,
            rollback: false,
        })
    }

    /// One invocation of the handler with this resource's envelope.
    pub async fn invoke(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        context: Option<&Value>,
    ) -> Value {
        invoke_handler(self.envelope(action, token, properties, previous, context)).await
    }

    /// One operation to its end: invoke, then re-invoke with the callbackContext after the
    /// (scaled) callbackDelaySeconds while the answer is IN_PROGRESS.
    pub async fn operate(
        &self,
        action: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
    ) -> Operation {
        self.operate_with_token(action, &new_token(), properties, previous)
            .await
    }

    pub async fn operate_with_token(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
    ) -> Operation {
        self.play(action, token, properties, previous, false).await
    }

    /// The UPDATE CloudFormation sends when it rolls the stack back (`rollback: true`):
    /// back to `properties` from `previous`, to its end, with the bearer token `token`
    /// (the same token again is a redelivery).
    pub async fn rollback(
        &self,
        token: &str,
        id: &str,
        properties: &Value,
        previous: &Value,
    ) -> Operation {
        let mut desired = properties.clone();
        desired["Id"] = json!(id);
        let mut before = previous.clone();
        before["Id"] = json!(id);
        self.play("UPDATE", token, Some(&desired), Some(&before), true)
            .await
    }

    async fn play(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        rollback: bool,
    ) -> Operation {
        let started = Instant::now();
        let mut events = Vec::new();
        let mut context: Option<Value> = None;
        let mut properties = properties.cloned();
        loop {
            let mut event = self.envelope(
                action,
                token,
                properties.as_ref(),
                previous,
                context.as_ref(),
            );
            if rollback {
                event["rollback"] = json!(true);
            }
            let answer = invoke_handler(event).await;
            assert_no_nulls(&answer);
            let status = answer["status"].as_str().unwrap_or_default().to_string();
            events.push(answer.clone());
            if status != "IN_PROGRESS" {
                break;
            }
            assert!(events.len() < 400, "operation never ended: {answer}");
            let delay = answer["callbackDelaySeconds"]
                .as_f64()
                .expect("callbackDelaySeconds");
            context = Some(answer["callbackContext"].clone());
            // As CloudFormation does: the next invocation gets the model the handler
            // returned (without the write-only Overrides), not the original properties.
            if action != "DELETE" {
                if let Some(model) = answer.get("resourceModel") {
                    properties = Some(model.clone());
                }
            }
            tokio::time::sleep(scaled(delay)).await;
        }
        Operation {
            events,
            elapsed: started.elapsed(),
        }
    }

    pub async fn create(&self, properties: &Value) -> Operation {
        self.operate("CREATE", Some(properties), None).await
    }

    pub async fn update(&self, id: &str, properties: &Value, previous: &Value) -> Operation {
        let mut desired = properties.clone();
        desired["Id"] = json!(id);
        let mut before = previous.clone();
        before["Id"] = json!(id);
        self.operate("UPDATE", Some(&desired), Some(&before)).await
    }

    pub async fn read(&self, id: &str) -> Operation {
        self.operate("READ", Some(&json!({"Id": id})), None).await
    }

    pub async fn delete(&self, id: &str, properties: &Value) -> Operation {
        let mut desired = properties.clone();
        desired["Id"] = json!(id);
        self.operate("DELETE", Some(&desired), None).await
    }
}

/// The Lambda timeout these tests give the handler: short, so that an invocation waits
/// for running tasks about 8 s before it answers IN_PROGRESS (the budget honours the
/// Lambda deadline as it would in AWS).
pub const LAMBDA_TIMEOUT: Duration = Duration::from_secs(20);

/// One invocation of the real handler, as the Lambda runtime makes it.
pub async fn invoke_handler(event: Value) -> Value {
    let deadline = std::time::SystemTime::now() + LAMBDA_TIMEOUT;
    let payload = event.to_string();
    // On a worker of the tests' runtime (large stacks), not on the test's own thread.
    tokio::spawn(async move { taskrun::handle(payload.as_bytes(), Some(deadline)).await })
        .await
        .unwrap_or_else(|e| serde_json::json!({"status": "FAILED", "message": e.to_string()}))
}

impl LocalLambda {
    /// TaskRun's handler binary behind a local Lambda.
    pub fn start(emulator: &Emulator) -> LocalLambda {
        Self::with_binary(emulator, env!("CARGO_BIN_EXE_bootstrap"))
    }
}
