//! End to end: the real `servicerestart-bootstrap` binary behind a local Lambda, against
//! the emulator's services and deployments (UpdateService with forceNewDeployment starts a
//! PRIMARY deployment that completes, fails with the circuit breaker's rollback, or never
//! ends, as each test asks), driven the way CloudFormation drives it.

#[path = "../../tests/common/local.rs"]
mod local;

use std::time::{Duration, Instant};

use local::{run, Emulator, LocalLambda, ACCESS_KEY, REGION, SECRET_KEY};
use serde_json::{json, Value};
use test_support::cfn::{assert_no_nulls, scaled, unique, Call, Template};

/// What kind of service a test restarts (each an ECS behaviour the strict emulator has).
#[derive(Default, Clone, Copy)]
struct Kind {
    /// `deploymentController.type` (`None`: ECS, CreateService's default).
    controller: Option<&'static str>,
    /// Behind a Classic Load Balancer (`loadBalancers[].loadBalancerName`): ECS shows no
    /// rolloutState.
    classic_load_balancer: bool,
    /// A PAUSE lifecycle hook at this stage: each new deployment waits there until
    /// ContinueServiceDeployment.
    pause_at: Option<&'static str>,
    /// Created with the short ARN of services from before 2021 (emulator behaviour
    /// `shortArn`).
    short_arn: bool,
}

/// One invocation after another of one operation, as CloudFormation delivers them.
struct Steps {
    action: String,
    token: String,
    properties: Option<Value>,
    previous: Option<Value>,
    rollback: bool,
    context: Option<Value>,
    /// Every answer so far.
    events: Vec<Value>,
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
        Stage::of_kind(name, Kind::default()).await
    }

    /// A cluster and a service of 2 tasks of the given kind.
    async fn of_kind(name: &str, kind: Kind) -> Stage {
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
        if kind.short_arn {
            emulator.control(
                "POST",
                "/_taskrun/behaviours",
                Some(json!({"service": service, "shortArn": true})),
            );
        }
        let mut create = ecs
            .create_service()
            .cluster(&cluster)
            .service_name(&service)
            .task_definition(arn)
            .desired_count(2);
        if let Some(controller) = kind.controller {
            create = create.deployment_controller(
                aws_sdk_ecs::types::DeploymentController::builder()
                    .r#type(controller.into())
                    .build()
                    .expect("a deployment controller"),
            );
        }
        if kind.classic_load_balancer {
            create = create.load_balancers(
                aws_sdk_ecs::types::LoadBalancer::builder()
                    .load_balancer_name(format!("{service}-clb"))
                    .container_name("app")
                    .container_port(80)
                    .build(),
            );
        }
        if let Some(stage) = kind.pause_at {
            create = create.deployment_configuration(
                aws_sdk_ecs::types::DeploymentConfiguration::builder()
                    .lifecycle_hooks(
                        aws_sdk_ecs::types::DeploymentLifecycleHook::builder()
                            .target_type(
                                aws_sdk_ecs::types::DeploymentLifecycleHookTargetType::Pause,
                            )
                            .lifecycle_stages(stage.into())
                            .build(),
                    )
                    .build(),
            );
        }
        let created = create.send().await.expect("CreateService");
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

    /// What is the same in every request about the restart; as CloudFormation sends its
    /// properties, every scalar a string.
    fn template(&self) -> Template {
        Template {
            head: json!({"awsAccountId": "123456789012", "region": REGION,
                "resourceType": "Org::ECS::ServiceRestart", "stackId": self.stack_id}),
            request_data: json!({
                "callerCredentials": {"accessKeyId": ACCESS_KEY, "secretAccessKey": SECRET_KEY, "sessionToken": "session"},
                "logicalResourceId": "RestartApi",
            }),
            strings: true,
        }
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
        assert_no_nulls(&answer);
        Ok(answer)
    }

    /// An operation to deliver (first delivery with `token`, then callbacks), one
    /// invocation at a time with [`Stage::step`].
    fn begin(
        &self,
        action: &str,
        token: &str,
        properties: Option<&Value>,
        previous: Option<&Value>,
        rollback: bool,
    ) -> Steps {
        Steps {
            action: action.to_string(),
            token: token.to_string(),
            properties: properties.cloned(),
            previous: previous.cloned(),
            rollback,
            context: None,
            events: Vec::new(),
        }
    }

    /// The operation's next invocation, after the delay the last answer asked for
    /// (scaled); `None` once it ended.
    fn step(&self, steps: &mut Steps) -> Option<Value> {
        if let Some(last) = steps.events.last() {
            if last["status"] != "IN_PROGRESS" {
                return None;
            }
            let delay = last["callbackDelaySeconds"].as_f64().unwrap_or(1.0);
            std::thread::sleep(scaled(delay));
        }
        let event = self.template().envelope(&Call {
            action: &steps.action,
            token: &steps.token,
            properties: steps.properties.as_ref(),
            previous: steps.previous.as_ref(),
            context: steps.context.as_ref(),
            rollback: steps.rollback,
        });
        let answer = self.invoke(&event).expect("the handler answers");
        steps.events.push(answer.clone());
        if answer["status"] == "IN_PROGRESS" {
            assert!(
                steps.events.len() < 200,
                "the operation never ended: {answer}"
            );
            if steps.action != "DELETE" {
                assert_eq!(
                    answer["resourceModel"]["Id"].as_str().map(str::is_empty),
                    Some(false),
                    "IN_PROGRESS carries the model with its Id: {answer}"
                );
                steps.properties = Some(answer["resourceModel"].clone());
            }
            steps.context = Some(answer["callbackContext"].clone());
        }
        Some(answer)
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
        let mut steps = self.begin(action, token, properties, previous, rollback);
        while self.step(&mut steps).is_some() {}
        steps.events
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

    /// Where the emulator's call log ends now (it only grows), for [`Stage::calls_since`].
    fn mark(&self) -> usize {
        self.emulator.call_log().len()
    }

    /// Every call the emulator received about this service (its name or ARN in the body,
    /// or one of its service deployments) since `mark`.
    fn calls_since(&self, mark: usize) -> Vec<Value> {
        self.emulator
            .call_log()
            .into_iter()
            .skip(mark)
            .filter(|c| {
                let body = c["body"].to_string();
                body.contains(&format!("\"{}\"", self.service))
                    || body.contains(&format!("\"{}\"", self.service_arn))
                    || body.contains(&format!("/{}/", self.service))
            })
            .collect()
    }

    async fn paused_hook(&self) -> Option<PausedHook> {
        paused_hook(self.emulator, &self.cluster, &self.service).await
    }

    /// The status of a service deployment (DescribeServiceDeployments).
    async fn service_deployment_status(&self, arn: &str) -> Option<String> {
        let described = self
            .emulator
            .ecs()
            .describe_service_deployments()
            .service_deployment_arns(arn)
            .send()
            .await
            .expect("DescribeServiceDeployments");
        described
            .service_deployments()
            .first()
            .and_then(|d| d.status())
            .map(|s| s.as_str().to_string())
    }

    fn listed(&self, id: &str) -> bool {
        let answer = self.operate("LIST", Some(&json!({})), None);
        assert_eq!(answer["status"], "SUCCESS", "{answer}");
        answer["resourceModels"]
            .as_array()
            .is_some_and(|models| models.iter().any(|m| m["Id"] == id))
    }
}

/// A service deployment waiting at a PAUSE hook, as ListServiceDeployments and
/// DescribeServiceDeployments show it.
#[derive(Debug, Clone)]
struct PausedHook {
    service_deployment: String,
    stage: String,
    hook_id: String,
}

/// The service deployment of `service` waiting at a PAUSE hook, if any.
async fn paused_hook(emulator: &Emulator, cluster: &str, service: &str) -> Option<PausedHook> {
    let ecs = emulator.ecs();
    let listed = ecs
        .list_service_deployments()
        .cluster(cluster)
        .service(service)
        .send()
        .await
        .expect("ListServiceDeployments");
    let arns: Vec<String> = listed
        .service_deployments()
        .iter()
        .filter(|d| d.status().map(|s| s.as_str()) == Some("IN_PROGRESS"))
        .filter_map(|d| d.service_deployment_arn().map(str::to_string))
        .collect();
    if arns.is_empty() {
        return None;
    }
    let described = ecs
        .describe_service_deployments()
        .set_service_deployment_arns(Some(arns))
        .send()
        .await
        .expect("DescribeServiceDeployments");
    described.service_deployments().iter().find_map(|d| {
        let hook = d
            .lifecycle_hook_details()
            .iter()
            .find(|h| h.status().map(|s| s.as_str()) == Some("AWAITING_ACTION"))?;
        Some(PausedHook {
            service_deployment: d.service_deployment_arn()?.to_string(),
            stage: d.lifecycle_stage()?.as_str().to_string(),
            hook_id: hook.hook_id()?.to_string(),
        })
    })
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
        let first = stage.template().envelope(&Call {
            action: "CREATE",
            token: &token,
            properties: Some(&props),
            ..Call::default()
        });
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

/// `Service: !Ref OldService` of a service created before 2021 is its short ARN, which
/// names no cluster: without `Cluster` the CREATE is refused at once, asking for it, and
/// ECS is not called (it used to look in the cluster named default).
#[test]
fn a_short_service_arn_without_cluster_is_refused_asking_for_cluster() {
    run(async {
        let stage = Stage::new("short-arn").await;
        let short = format!(
            "arn:aws:ecs:{REGION}:123456789012:service/{}",
            stage.service
        );
        let props = json!({"Service": short, "Triggers": ["x"]});
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "InvalidRequest");
        let message = created["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("short service ARN") && message.contains("Set Cluster"),
            "{message}"
        );
        assert!(
            stage
                .emulator
                .call_log()
                .iter()
                .all(|c| !c["body"].to_string().contains(&short)),
            "no ECS call for it"
        );
        assert_eq!(stage.restarts(), 0);
    });
}

/// A service whose deployments are not ECS's own: the restart is refused before any
/// UpdateService (which ECS refuses for it), saying why and what restarts such a service;
/// no record is left.
fn refused_for_its_controller(controller: &'static str, what_to_do: &[&str]) {
    run(async {
        let stage = Stage::of_kind(
            &controller.to_lowercase().replace('_', "-"),
            Kind {
                controller: Some(controller),
                ..Kind::default()
            },
        )
        .await;
        let mark = stage.mark();
        let props = stage.properties(json!({}));
        let created = stage.operate("CREATE", Some(&props), None);
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "InvalidRequest", "{created}");
        let message = created["message"].as_str().unwrap_or_default();
        for part in [
            &format!("service {}", stage.service),
            &format!("uses the {controller} deployment controller"),
            "UpdateService cannot force a new deployment",
            "Nothing was changed",
        ]
        .into_iter()
        .chain(what_to_do.iter().copied())
        {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        let calls = stage.calls_since(mark);
        assert!(
            calls.iter().any(|c| c["api"] == "DescribeServices"),
            "the handler looked at the service: {calls:?}"
        );
        assert!(
            calls.iter().all(|c| c["api"] != "UpdateService"),
            "no UpdateService for a {controller} service: {calls:?}"
        );
        assert_eq!(stage.read(&id_of(&created))["errorCode"], "NotFound");
    });
}

/// A blue/green service of CodeDeploy: refused, pointing at CodeDeploy.
#[test]
fn a_code_deploy_service_is_refused_before_any_update_service() {
    refused_for_its_controller(
        "CODE_DEPLOY",
        &["aws deploy create-deployment", "ECS deployment controller"],
    );
}

/// A service of an external deployment controller: refused, pointing at its task sets.
#[test]
fn an_external_service_is_refused_before_any_update_service() {
    refused_for_its_controller("EXTERNAL", &["CreateTaskSet", "ECS deployment controller"]);
}

/// Behind a Classic Load Balancer ECS shows no rolloutState: the restart ends SUCCESS
/// once its deployment is the only one listed and runs its desired count (as
/// `aws ecs wait services-stable` judges), not before, and not at the Timeout.
#[test]
fn a_service_behind_a_classic_load_balancer_succeeds_once_stable() {
    run(async {
        let stage = Stage::of_kind(
            "clb",
            Kind {
                classic_load_balancer: true,
                ..Kind::default()
            },
        )
        .await;
        stage.next_deployments(json!({"kind": "completed", "afterSeconds": 2.5}), 1);
        let props = stage.properties(json!({"Timeout": 30}));
        let began = Instant::now();
        let created = stage.operate("CREATE", Some(&props), None);
        let took = began.elapsed();
        assert_eq!(created["status"], "SUCCESS", "{created}");
        let deployments = stage.deployments().await;
        assert_eq!(
            deployments.len(),
            1,
            "SUCCESS only once the new deployment is the only one: {deployments:?}"
        );
        let only = &deployments[0];
        assert!(
            only.rollout_state().is_none(),
            "ECS shows no rolloutState behind a Classic Load Balancer: {only:?}"
        );
        assert_eq!(only.status(), Some("PRIMARY"));
        assert_eq!(only.running_count(), only.desired_count());
        let model = &created["resourceModel"];
        assert_eq!(model["Status"], "SUCCEEDED");
        assert_eq!(
            model["DeploymentId"].as_str(),
            only.id(),
            "the new deployment"
        );
        assert!(
            took >= Duration::from_millis(2500),
            "not before the deployment completed ({took:?})"
        );
        assert!(
            took < Duration::from_secs(20),
            "soon after it completed, not at the Timeout ({took:?})"
        );
        assert_eq!(stage.restarts(), 1);
    });
}

/// A service created with a short ARN (before 2021): `Service: <short ARN>` alone is
/// refused before any ECS call, asking for `Cluster`; with `Cluster` it restarts.
#[test]
fn a_service_with_a_short_arn_restarts_once_cluster_is_given() {
    run(async {
        let stage = Stage::of_kind(
            "short",
            Kind {
                short_arn: true,
                ..Kind::default()
            },
        )
        .await;
        assert_eq!(
            stage.service_arn,
            format!(
                "arn:aws:ecs:{REGION}:123456789012:service/{}",
                stage.service
            ),
            "the emulator gave the service a short ARN"
        );
        let mark = stage.mark();
        let alone = json!({"Service": stage.service_arn, "Triggers": ["x"]});
        let refused = stage.operate("CREATE", Some(&alone), None);
        assert_eq!(refused["status"], "FAILED", "{refused}");
        assert_eq!(refused["errorCode"], "InvalidRequest");
        let message = refused["message"].as_str().unwrap_or_default();
        assert!(
            message.contains("short service ARN") && message.contains("Set Cluster"),
            "{message}"
        );
        let calls = stage.calls_since(mark);
        assert!(calls.is_empty(), "no ECS call for it: {calls:?}");

        stage.next_deployments(json!({"kind": "completed", "afterDescribes": 2}), 1);
        let with_cluster = json!({"Service": stage.service_arn, "Cluster": stage.cluster,
            "Triggers": ["x"], "PollInterval": 1});
        let created = stage.operate("CREATE", Some(&with_cluster), None);
        assert_eq!(created["status"], "SUCCESS", "{created}");
        assert_eq!(stage.restarts(), 1);
        let deployments = stage.deployments().await;
        let primary = deployments
            .iter()
            .find(|d| d.status() == Some("PRIMARY"))
            .expect("a PRIMARY deployment");
        assert_eq!(
            created["resourceModel"]["DeploymentId"].as_str(),
            primary.id()
        );
        assert_eq!(
            primary.rollout_state().map(|s| s.as_str()),
            Some("COMPLETED")
        );
        assert_eq!(primary.running_count(), primary.desired_count());
    });
}

const HOOK_STAGE: &str = "POST_SCALE_UP";

/// A restart of a service whose deployments pause at [`HOOK_STAGE`], nobody continuing
/// it, with a Timeout of 3 s: the answer, and the hook the deployment still waits at.
async fn restart_left_at_a_hook(name: &str) -> (Stage, Value, PausedHook, usize) {
    let stage = Stage::of_kind(
        name,
        Kind {
            pause_at: Some(HOOK_STAGE),
            ..Kind::default()
        },
    )
    .await;
    let mark = stage.mark();
    let props = stage.properties(json!({"Timeout": 3}));
    let created = stage.operate("CREATE", Some(&props), None);
    let hook = stage
        .paused_hook()
        .await
        .expect("the deployment still waits at its hook");
    assert_eq!(hook.stage, HOOK_STAGE);
    (stage, created, hook, mark)
}

/// A deployment paused at a PAUSE lifecycle hook that nobody continues: the restart ends
/// at its Timeout (NotStabilized, TIMED_OUT) and leaves the hook alone (waiting: neither
/// continued nor rolled back).
#[test]
fn a_deployment_paused_at_a_hook_times_out_and_is_left_waiting() {
    run(async {
        let (stage, created, _, mark) = restart_left_at_a_hook("paused").await;
        assert_eq!(created["status"], "FAILED", "{created}");
        assert_eq!(created["errorCode"], "NotStabilized", "{created}");
        assert_eq!(created["resourceModel"]["Status"], "TIMED_OUT");
        let message = created["message"].as_str().unwrap_or_default();
        for part in [
            "timed out after 3 s",
            "was left IN_PROGRESS",
            "nothing was stopped",
        ] {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        assert_eq!(stage.restarts(), 1);
        let calls = stage.calls_since(mark);
        assert!(
            calls.iter().all(|c| !matches!(
                c["api"].as_str(),
                Some("ContinueServiceDeployment" | "StopServiceDeployment")
            )),
            "the handler leaves the hook alone: {calls:?}"
        );
    });
}

/// The same restart's reason names the stage the deployment waits at and the command
/// that continues it (the handler reads the hooks of the service's
/// `currentServiceDeployment` with DescribeServiceDeployments).
#[test]
fn a_restart_timed_out_at_a_hook_names_the_stage_and_the_continue_command() {
    run(async {
        let (_, created, hook, _) = restart_left_at_a_hook("paused-named").await;
        assert_eq!(created["errorCode"], "NotStabilized", "{created}");
        let message = created["message"].as_str().unwrap_or_default();
        for part in [
            format!("waits at lifecycle stage {HOOK_STAGE} on PAUSE hook {}", hook.hook_id),
            format!(
                "aws ecs continue-service-deployment --service-deployment-arn {} --hook-id {} --action CONTINUE",
                hook.service_deployment, hook.hook_id
            ),
        ] {
            assert!(message.contains(&part), "{part:?} in {message}");
        }
    });
}

/// How long the deployment of the next test waits at its hook before it is continued.
const PAUSED_FOR: Duration = Duration::from_secs(3);

/// A deployment paused at a PAUSE lifecycle hook, continued (ContinueServiceDeployment)
/// while the restart waits: the restart follows it through the pause (not ending, still
/// looking), then ends SUCCESS with the deployment completed.
#[test]
fn a_deployment_continued_at_its_hook_lets_the_restart_succeed() {
    run(async {
        let stage = Stage::of_kind(
            "continued",
            Kind {
                pause_at: Some(HOOK_STAGE),
                ..Kind::default()
            },
        )
        .await;
        stage.next_deployments(json!({"kind": "completed", "afterDescribes": 2}), 1);
        // Someone continues the hook PAUSED_FOR after the deployment reached it: when, the
        // hook, and the service's calls the emulator had seen when it was reached.
        let (emulator, cluster, service) =
            (stage.emulator, stage.cluster.clone(), stage.service.clone());
        let operator = tokio::spawn(async move {
            let began = Instant::now();
            while began.elapsed() < Duration::from_secs(30) {
                if let Some(hook) = paused_hook(emulator, &cluster, &service).await {
                    let reached = emulator.call_log().len();
                    tokio::time::sleep(PAUSED_FOR).await;
                    emulator
                        .ecs()
                        .continue_service_deployment()
                        .service_deployment_arn(&hook.service_deployment)
                        .hook_id(&hook.hook_id)
                        .action(aws_sdk_ecs::types::DeploymentLifecycleHookAction::Continue)
                        .send()
                        .await
                        .expect("ContinueServiceDeployment");
                    return Some((Instant::now(), hook, reached));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            None
        });
        let props = stage.properties(json!({"Timeout": 60}));
        let last = stage.operate("CREATE", Some(&props), None);
        let ended = Instant::now();
        let (continued, hook, reached) = operator
            .await
            .expect("the operator")
            .unwrap_or_else(|| panic!("the deployment never waited at its hook: {last}"));
        assert_eq!(last["status"], "SUCCESS", "{last}");
        assert!(
            ended > continued,
            "the restart ended only once the hook was continued"
        );
        // While the deployment waited, the restart kept following it.
        let calls = stage.calls_since(reached);
        assert!(
            calls
                .iter()
                .any(|c| c["api"] == "ContinueServiceDeployment"),
            "{calls:?}"
        );
        let looks = calls
            .iter()
            .take_while(|c| c["api"] != "ContinueServiceDeployment")
            .filter(|c| c["api"] == "DescribeServices")
            .count();
        assert!(
            looks >= 2,
            "{looks} DescribeServices while the deployment waited at its hook"
        );
        assert_eq!(last["resourceModel"]["Status"], "SUCCEEDED");
        let deployments = stage.deployments().await;
        assert_eq!(deployments.len(), 1, "{deployments:?}");
        let primary = &deployments[0];
        assert_eq!(last["resourceModel"]["DeploymentId"].as_str(), primary.id());
        assert_eq!(
            primary.rollout_state().map(|s| s.as_str()),
            Some("COMPLETED")
        );
        assert_eq!(primary.running_count(), primary.desired_count());
        assert_eq!(
            stage
                .service_deployment_status(&hook.service_deployment)
                .await
                .as_deref(),
            Some("SUCCESSFUL")
        );
        assert_eq!(stage.restarts(), 1);
    });
}
