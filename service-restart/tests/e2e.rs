//! End to end: the real `servicerestart-bootstrap` binary behind a local Lambda, against
//! the emulator's services and deployments (UpdateService with forceNewDeployment starts a
//! PRIMARY deployment that completes, fails with the circuit breaker's rollback, or never
//! ends, as each test asks), driven the way CloudFormation drives it.

#[path = "../../tests/common/local.rs"]
mod local;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use local::{run, Emulator, LocalLambda, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};

/// callbackDelaySeconds are slept for this fraction of their value.
const DELAY_SCALE: f64 = 0.05;

static SEQUENCE: AtomicU64 = AtomicU64::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        SEQUENCE.fetch_add(1, Ordering::SeqCst)
    )
}

/// One test's service on the shared emulator, and its own handler process.
struct Stage {
    emulator: &'static Emulator,
    lambda: LocalLambda,
    cluster: String,
    service: String,
    service_arn: String,
    stack_id: String,
}

impl Stage {
    /// A cluster and a service of 2 tasks (its first deployment COMPLETED).
    async fn new(name: &str) -> Stage {
        let emulator = Emulator::shared();
        let cluster = unique(&format!("c-{name}"));
        let service = unique(name);
        let ecs = emulator.ecs();
        ecs.create_cluster()
            .cluster_name(&cluster)
            .send()
            .await
            .expect("CreateCluster");
        let definition = ecs
            .register_task_definition()
            .family(&service)
            .container_definitions(
                aws_sdk_ecs::types::ContainerDefinition::builder()
                    .name("app")
                    .image("public.ecr.aws/docker/library/busybox:latest")
                    .memory(128)
                    .essential(true)
                    .build(),
            )
            .send()
            .await
            .expect("RegisterTaskDefinition");
        let arn = definition
            .task_definition()
            .and_then(|d| d.task_definition_arn())
            .expect("task definition ARN")
            .to_string();
        let created = ecs
            .create_service()
            .cluster(&cluster)
            .service_name(&service)
            .task_definition(arn)
            .desired_count(2)
            .send()
            .await
            .expect("CreateService");
        let service_arn = created
            .service()
            .and_then(|s| s.service_arn())
            .expect("service ARN")
            .to_string();
        Stage {
            emulator,
            lambda: LocalLambda::with_binary(
                emulator,
                env!("CARGO_BIN_EXE_servicerestart-bootstrap"),
            ),
            stack_id: format!(
                "arn:aws:cloudformation:{REGION}:123456789012:stack/{}/1",
                unique("stack")
            ),
            cluster,
            service,
            service_arn,
        }
    }

    fn properties(&self, extra: Value) -> Value {
        let mut props = json!({"Cluster": self.cluster, "Service": self.service,
            "Triggers": ["secret-version-1"], "PollInterval": 1});
        if let (Some(map), Value::Object(extra)) = (props.as_object_mut(), extra) {
            map.extend(extra);
        }
        props
    }

    /// How the next `count` deployments of the service end.
    fn next_deployments(&self, outcome: Value, count: u32) {
        self.emulator.control(
            "POST",
            "/_taskrun/deployment-outcomes",
            Some(json!({"service": self.service, "outcome": outcome, "count": count})),
        );
    }

    /// UpdateService requests the emulator carried out for this service.
    fn restarts(&self) -> usize {
        self.emulator
            .call_log()
            .iter()
            .filter(|c| {
                c["api"] == "UpdateService"
                    && c["acted"] == true
                    && c["body"]["service"]
                        .as_str()
                        .is_some_and(|s| s == self.service || s == self.service_arn)
            })
            .count()
    }

    async fn deployments(&self) -> Vec<aws_sdk_ecs::types::Deployment> {
        let out = self
            .emulator
            .ecs()
            .describe_services()
            .cluster(&self.cluster)
            .services(&self.service)
            .send()
            .await
            .expect("DescribeServices");
        out.services()
            .first()
            .map(|s| s.deployments().to_vec())
            .unwrap_or_default()
    }

    fn envelope(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        context: Option<&Value>,
        rollback: bool,
    ) -> Value {
        let mut request_data = json!({
            "callerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
            "logicalResourceId": "RestartApi",
        });
        // As CloudFormation sends them: every scalar a string.
        if let Some(p) = properties {
            request_data["resourceProperties"] = strings(p);
        }
        if let Some(p) = previous {
            request_data["previousResourceProperties"] = strings(p);
        }
        let mut event = json!({"action": action, "awsAccountId": "123456789012", "bearerToken": token,
            "region": REGION, "resourceType": "Org::ECS::ServiceRestart", "stackId": self.stack_id,
            "requestData": request_data});
        if let Some(c) = context {
            event["callbackContext"] = c.clone();
        }
        if rollback {
            event["rollback"] = json!(true);
        }
        event
    }

    /// One invocation; every answer is checked to be a progress event without nulls, given
    /// within the Registry's 60 s.
    fn invoke(&self, event: &Value) -> Result<Value, String> {
        let began = Instant::now();
        let answer = self.lambda.invoke(event)?;
        assert!(
            began.elapsed() < Duration::from_secs(60),
            "an invocation took {:?}",
            began.elapsed()
        );
        no_nulls(&answer);
        Ok(answer)
    }

    /// One operation to its end (first delivery with `token`, then callbacks).
    fn operate_with(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        rollback: bool,
    ) -> Vec<Value> {
        let mut events = Vec::new();
        let mut context: Option<Value> = None;
        let mut properties = properties.cloned();
        loop {
            let event = self.envelope(
                action,
                token,
                properties.as_ref(),
                previous,
                context.as_ref(),
                rollback,
            );
            let answer = self.invoke(&event).expect("the handler answers");
            events.push(answer.clone());
            if answer["status"] != "IN_PROGRESS" {
                return events;
            }
            assert!(events.len() < 200, "the operation never ended: {answer}");
            if action != "DELETE" {
                assert_eq!(
                    answer["resourceModel"]["Id"].as_str().map(str::is_empty),
                    Some(false),
                    "IN_PROGRESS carries the model with its Id: {answer}"
                );
                properties = Some(answer["resourceModel"].clone());
            }
            context = Some(answer["callbackContext"].clone());
            let delay = answer["callbackDelaySeconds"].as_f64().unwrap_or(1.0);
            std::thread::sleep(Duration::from_secs_f64((delay * DELAY_SCALE).max(0.02)));
        }
    }

    fn operate(&self, action: &str, properties: Option<&Value>, previous: Option<&Value>) -> Value {
        let token = unique("token");
        let events = self.operate_with(action, &token, properties, previous, false);
        events.last().cloned().unwrap_or(Value::Null)
    }

    fn update(&self, id: &str, desired: &Value, previous: &Value, rollback: bool) -> Value {
        let mut desired = desired.clone();
        desired["Id"] = json!(id);
        let mut previous = previous.clone();
        previous["Id"] = json!(id);
        let token = unique("token");
        let events = self.operate_with("UPDATE", &token, Some(&desired), Some(&previous), rollback);
        events.last().cloned().unwrap_or(Value::Null)
    }

    fn read(&self, id: &str) -> Value {
        self.operate("READ", Some(&json!({"Id": id})), None)
    }

    fn listed(&self, id: &str) -> bool {
        let answer = self.operate("LIST", Some(&json!({})), None);
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
        answer["resourceModels"]
            .as_array()
            .is_some_and(|models| models.iter().any(|m| m["Id"] == id))
    }
}

fn strings(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        Value::Array(items) => Value::Array(items.iter().map(strings).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), strings(v))).collect())
        }
        other => other.clone(),
    }
}

fn no_nulls(value: &Value) {
    match value {
        Value::Null => panic!("a progress event holds null"),
        Value::Array(items) => items.iter().for_each(no_nulls),
        Value::Object(map) => map.values().for_each(no_nulls),
        _ => {}
    }
}

fn id_of(answer: &Value) -> String {
    answer["resourceModel"]["Id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The restart the blog's custom resource only fired: UpdateService, then SUCCESS once the
/// new deployment COMPLETED with every task running. READ and LIST answer from the record;
/// DELETE removes the record and leaves the service alone.
#[test]
fn a_restart_succeeds_once_the_new_deployment_completed() {
    run(async {
        let stage = Stage::new("completes").await;
        stage.next_deployments(json!({"kind": "completed", "afterDescribes": 3}), 1);
        let props = stage.properties(json!({}));
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "SUCCESS", "{created}");
        let model = &created["resourceModel"];
        assert_eq!(model["Status"], "SUCCEEDED");
        assert_eq!(stage.restarts(), 1, "one UpdateService");
        let deployments = stage.deployments().await;
        let primary = deployments
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .expect("a PRIMARY deployment");
        assert_eq!(model["DeploymentId"].as_str(), primary.id());
        assert_eq!(
            primary.rollout_state().map(|s| s.as_str()),
            Some("COMPLETED")
        );
        assert_eq!(primary.running_count(), primary.desired_count());
        assert!(model["StartedAt"].is_string() && model["FinishedAt"].is_string());

        let id = id_of(&created);
        let read = stage.read(&id);
        assert_eq!(read["status"], "SUCCESS", "{read}");
        assert_eq!(read["resourceModel"]["DeploymentId"], model["DeploymentId"]);
        assert!(stage.listed(&id));

        let deleted = stage.operate("DELETE", Some(&json!({"Id": id})), None);
        assert_eq!(deleted["status"], "SUCCESS", "{deleted}");
        assert!(deleted.get("resourceModel").is_none());
        assert_eq!(stage.read(&id)["errorCode"], "NotFound");
        assert!(!stage.listed(&id));
        assert_eq!(stage.restarts(), 1, "DELETE leaves the service alone");
        assert_eq!(stage.deployments().await.len(), 1, "the service runs on");
    });
}

/// A deployment the circuit breaker fails and rolls back fails the deploy, and the message
/// says what a human needs: the deployment, the rollout reason, the failed tasks, where the
/// service is now, and the service's last events. The failed CREATE leaves no record.
#[test]
fn a_failed_deployment_fails_the_deploy_with_its_reason() {
    run(async {
        let stage = Stage::new("fails").await;
        let before = stage.deployments().await;
        stage.next_deployments(
            json!({"kind": "failed", "afterDescribes": 2, "failedTasks": 4,
                   "reason": "ECS deployment circuit breaker: tasks failed to start."}),
            1,
        );
        let props = stage.properties(json!({}));
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "GeneralServiceException");
        let message = created["message"].as_str().unwrap_or_default();
        let deployment = created["resourceModel"]["DeploymentId"]
            .as_str()
            .expect("the model names the deployment");
        for part in [
            &format!(
                "deployment {deployment} of service {} failed",
                stage.service
            ),
            "ECS deployment circuit breaker: tasks failed to start.",
            "4 tasks failed to start or stay running",
            &format!(
                "the service is back on deployment {}",
                before[0].id().unwrap_or_default()
            ),
            "last service events:",
            &format!("(service {})", stage.service),
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        assert_eq!(created["resourceModel"]["Status"], "FAILED");
        assert_eq!(stage.restarts(), 1);
        assert_eq!(stage.read(&id_of(&created))["errorCode"], "NotFound");
    });
}

/// A deployment that never ends fails the deploy at the Timeout, saying in what state it
/// was left; nothing is stopped (ECS goes on with it).
#[test]
fn a_deployment_past_the_timeout_fails_and_is_left_running() {
    run(async {
        let stage = Stage::new("stuck").await;
        stage.next_deployments(json!({"kind": "stuck"}), 1);
        let props = stage.properties(json!({"Timeout": 3}));
        let began = Instant::now();
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "NotStabilized");
        let message = created["message"].as_str().unwrap_or_default();
        assert!(message.contains("timed out after 3 s"), "{message}");
        assert!(message.contains("was left IN_PROGRESS"), "{message}");
        assert!(message.contains("nothing was stopped"), "{message}");
        assert!(began.elapsed() >= Duration::from_secs(3));
        assert_eq!(stage.restarts(), 1, "one deployment, no second try");
        let deployments = stage.deployments().await;
        assert_eq!(deployments.len(), 2, "the stuck deployment is still there");
        assert_eq!(created["resourceModel"]["Status"], "TIMED_OUT");
    });
}

/// An update that changes neither Triggers nor the service does not restart; a changed
/// trigger does; a rollback does not unless RunOnRollback; RestartOnUpdate false never does.
#[test]
fn updates_restart_only_when_triggers_or_the_service_changed() {
    run(async {
        let stage = Stage::new("updates").await;
        let props = stage.properties(json!({}));
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "SUCCESS", "{created}");
        let id = id_of(&created);
        let first = created["resourceModel"]["DeploymentId"].clone();

        let timing = stage.properties(json!({"Timeout": 600, "PollInterval": 5}));
        let same = stage.update(&id, &timing, &props, false);
        assert_eq!(same["status"], "SUCCESS", "{same}");
        assert!(
            same["message"]
                .as_str()
                .unwrap_or_default()
                .contains("not restarted"),
            "{same}"
        );
        assert_eq!(same["resourceModel"]["Timeout"], 600);
        assert_eq!(
            same["resourceModel"]["DeploymentId"], first,
            "the last restart's"
        );
        assert_eq!(stage.restarts(), 1);

        let rotated = stage.properties(json!({"Triggers": ["secret-version-2"]}));
        let changed = stage.update(&id, &rotated, &timing, false);
        assert_eq!(changed["status"], "SUCCESS", "{changed}");
        assert_eq!(stage.restarts(), 2);
        assert_ne!(changed["resourceModel"]["DeploymentId"], first);

        // The stack rolls back to the old trigger: no restart by default ...
        let back = stage.update(&id, &props, &rotated, true);
        assert_eq!(back["status"], "SUCCESS", "{back}");
        assert!(
            back["message"]
                .as_str()
                .unwrap_or_default()
                .contains("rollback"),
            "{back}"
        );
        assert_eq!(stage.restarts(), 2);
        // ... and one with RunOnRollback.
        let on_rollback = stage.properties(json!({"RunOnRollback": true}));
        let back = stage.update(&id, &on_rollback, &rotated, true);
        assert_eq!(back["status"], "SUCCESS", "{back}");
        assert_eq!(stage.restarts(), 3);

        let never = stage.properties(json!({"Triggers": ["v9"], "RestartOnUpdate": false}));
        let skipped = stage.update(&id, &never, &on_rollback, false);
        assert_eq!(skipped["status"], "SUCCESS", "{skipped}");
        assert_eq!(stage.restarts(), 3);
    });
}

/// The handler process dies right after UpdateService acted, before it read the answer.
/// CloudFormation delivers the first invocation again: it finds the restart its first
/// delivery recorded as sent, looks the deployment up, and follows it. No second
/// deployment.
#[test]
fn a_redelivered_first_invocation_starts_no_second_deployment() {
    run(async {
        let stage = Stage::new("redelivered").await;
        stage.next_deployments(json!({"kind": "completed", "afterDescribes": 2}), 2);
        // Warm the binary so that its pid is known, then kill it on UpdateService.
        let warm = stage.invoke(
            &json!({"action": "LIST", "requestData": {"callerCredentials":
            {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY}}}),
        );
        assert!(warm.is_ok(), "{warm:?}");
        let pid = stage.lambda.handler_pid().expect("the handler runs");
        stage.emulator.control(
            "POST",
            "/_taskrun/kill",
            Some(json!({"api": "UpdateService", "pid": pid, "times": 1, "bodyContains": stage.service})),
        );
        let props = stage.properties(json!({}));
        let token = unique("token");
        let first = stage.envelope("CREATE", &token, Some(&props), None, None, false);
        let died = stage.invoke(&first);
        assert!(
            died.is_err(),
            "the process was killed mid-invocation: {died:?}"
        );
        assert_eq!(
            stage.restarts(),
            1,
            "UpdateService acted before the process died"
        );

        let events = stage.operate_with("CREATE", &token, Some(&props), None, false);
        let last = events.last().expect("answers");
        assert_eq!(last["status"], "SUCCESS", "{last}");
        assert_eq!(stage.restarts(), 1, "no second deployment");
        let deployments = stage.deployments().await;
        assert_eq!(
            last["resourceModel"]["DeploymentId"].as_str(),
            deployments
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
                .and_then(|d| d.id()),
            "the deployment the first delivery started"
        );
    });
}

/// A service that does not exist fails the CREATE at once with a reason naming it, and
/// leaves nothing behind.
#[test]
fn a_service_that_does_not_exist_fails_the_create() {
    run(async {
        let stage = Stage::new("missing").await;
        let props = stage.properties(json!({"Service": "no-such-service"}));
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "InvalidRequest");
        let message = created["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("no-such-service") && message.contains(&stage.cluster),
            "{message}"
        );
        assert_eq!(stage.read(&id_of(&created))["errorCode"], "NotFound");
        assert!(
            stage
                .emulator
                .call_log()
                .iter()
                .all(|c| c["api"] != "UpdateService" || c["body"]["service"] != "no-such-service"),
            "no UpdateService for a service that does not exist"
        );
    });
}

/// `Service: !Ref MyService` gives the service's ARN: the cluster comes from it.
#[test]
fn a_service_named_by_its_arn_needs_no_cluster() {
    run(async {
        let stage = Stage::new("by-arn").await;
        let props = json!({"Service": stage.service_arn, "Triggers": ["x"], "WaitFor": "STARTED"});
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "SUCCESS", "{created}");
        assert_eq!(stage.restarts(), 1);
        assert!(created["resourceModel"]["DeploymentId"].is_string());
    });
}
