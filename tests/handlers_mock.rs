//! The handlers end to end against the AWS SDK's own mock clients (aws-smithy-mocks):
//! a small in-test fake of SSM Parameter Store and of the ECS calls the handler makes,
//! driven with CloudFormation-shaped request envelopes. Every test asserts both the
//! progress event and the AWS calls the handler made.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::describe_tasks::{DescribeTasksError, DescribeTasksOutput};
use aws_sdk_ecs::operation::run_task::{RunTaskInput, RunTaskOutput};
use aws_sdk_ecs::operation::start_task::{StartTaskInput, StartTaskOutput};
use aws_sdk_ecs::operation::stop_task::{StopTaskInput, StopTaskOutput};
use aws_sdk_ecs::types::{
    Container, ContainerDefinition, Failure, KeyValuePair, Task, TaskDefinition, TaskStopCode,
};
use aws_sdk_ssm::operation::delete_parameter::{DeleteParameterError, DeleteParameterOutput};
use aws_sdk_ssm::operation::get_parameter::{GetParameterError, GetParameterOutput};
use aws_sdk_ssm::operation::get_parameters_by_path::GetParametersByPathOutput;
use aws_sdk_ssm::operation::put_parameter::{PutParameterInput, PutParameterOutput};
use aws_sdk_ssm::types::error::ParameterNotFound;
use aws_sdk_ssm::types::{Parameter, ParameterTier, ParameterType};
use aws_smithy_mocks::{mock, mock_client, MockResponse, Rule, RuleMode};
use aws_smithy_types::error::metadata::ProvideErrorMetadata;
use aws_smithy_types::error::ErrorMetadata;
use aws_smithy_types::retry::RetryConfig;
use aws_smithy_types::DateTime;
use cfn_protocol::{HandlerErrorCode, HandlerRequest, OperationStatus, ProgressEvent};
use serde_json::{json, Value};
use taskrun::aws::Clients;

const STACK_ID: &str =
    "arn:aws:cloudformation:us-east-1:123456789012:stack/app/8e1c0f70-5a5e-11ef-9c3a-0a1b2c3d4e5f";
const CLUSTER: &str = "main";
const TASK_ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012:task/main/";
const TASK_DEFINITION_ARN_PREFIX: &str = "arn:aws:ecs:us-east-1:123456789012:task-definition/";
const RUNS_PATH: &str = "/org-ecs-taskrun/runs";
/// The SDK's attempts per call in these tests (the handler's own clients use 4).
const MAX_ATTEMPTS: u32 = 3;

// ---------------------------------------------------------------------------------------
// The fake of SSM Parameter Store.

#[derive(Debug, Clone)]
struct StoredParameter {
    value: String,
    kind: Option<ParameterType>,
    tier: Option<ParameterTier>,
}

#[derive(Default)]
struct SsmState {
    parameters: BTreeMap<String, StoredParameter>,
    puts: Vec<PutParameterInput>,
    gets: Vec<String>,
    deletes: Vec<String>,
    lists: usize,
}

fn parameter_not_found(name: &str) -> ParameterNotFound {
    // A hand-built error has no code unless given one, and the store classifies by code.
    ParameterNotFound::builder()
        .message(format!("Parameter {name} not found."))
        .meta(
            ErrorMetadata::builder()
                .code("ParameterNotFound")
                .message(format!("Parameter {name} not found."))
                .build(),
        )
        .build()
}

fn ssm_rules(state: &Arc<Mutex<SsmState>>) -> Vec<Rule> {
    let put = {
        let state = state.clone();
        mock!(aws_sdk_ssm::Client::put_parameter).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.puts.push(input.clone());
            let name = input.name().unwrap_or_default().to_string();
            assert!(
                input.overwrite() == Some(true) || !s.parameters.contains_key(&name),
                "PutParameter without Overwrite on an existing parameter"
            );
            s.parameters.insert(
                name,
                StoredParameter {
                    value: input.value().unwrap_or_default().to_string(),
                    kind: input.r#type().cloned(),
                    tier: input.tier().cloned(),
                },
            );
            PutParameterOutput::builder().version(1).build()
        })
    };
    let get = {
        let state = state.clone();
        mock!(aws_sdk_ssm::Client::get_parameter).then_compute_response(move |input| {
            let mut s = state.lock().unwrap();
            let name = input.name().unwrap_or_default().to_string();
            s.gets.push(name.clone());
            match s.parameters.get(&name) {
                Some(p) => MockResponse::Output(
                    GetParameterOutput::builder()
                        .parameter(
                            Parameter::builder()
                                .name(&name)
                                .value(&p.value)
                                .set_type(p.kind.clone())
                                .build(),
                        )
                        .build(),
                ),
                None => MockResponse::Error(GetParameterError::ParameterNotFound(
                    parameter_not_found(&name),
                )),
            }
        })
    };
    let delete = {
        let state = state.clone();
        mock!(aws_sdk_ssm::Client::delete_parameter).then_compute_response(move |input| {
            let mut s = state.lock().unwrap();
            let name = input.name().unwrap_or_default().to_string();
            s.deletes.push(name.clone());
            match s.parameters.remove(&name) {
                Some(_) => MockResponse::Output(DeleteParameterOutput::builder().build()),
                None => MockResponse::Error(DeleteParameterError::ParameterNotFound(
                    parameter_not_found(&name),
                )),
            }
        })
    };
    let list = {
        let state = state.clone();
        mock!(aws_sdk_ssm::Client::get_parameters_by_path).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.lists += 1;
            let prefix = format!("{}/", input.path().unwrap_or_default());
            let recursive = input.recursive().unwrap_or(false);
            let names: Vec<&String> = s
                .parameters
                .keys()
                .filter(|n| n.starts_with(&prefix))
                .filter(|n| recursive || !n[prefix.len()..].contains('/'))
                .collect();
            let start: usize = input.next_token().map_or(0, |t| t.parse().unwrap());
            let size = input.max_results().unwrap_or(10) as usize;
            let end = (start + size).min(names.len());
            let page = names[start..end].iter().map(|n| {
                let p = &s.parameters[*n];
                Parameter::builder()
                    .name(*n)
                    .value(&p.value)
                    .set_type(p.kind.clone())
                    .build()
            });
            GetParametersByPathOutput::builder()
                .set_parameters(Some(page.collect()))
                .set_next_token((end < names.len()).then(|| end.to_string()))
                .build()
        })
    };
    vec![put, get, delete, list]
}

// ---------------------------------------------------------------------------------------
// The fake of ECS.

#[derive(Default)]
struct EcsState {
    /// Every ECS operation in the order it was called.
    log: Vec<String>,
    runs: Vec<RunTaskInput>,
    starts: Vec<StartTaskInput>,
    stops: Vec<StopTaskInput>,
    describe_tasks: usize,
    described_definitions: Vec<String>,
    /// What DescribeTasks answers; an ARN not in here is a MISSING failure.
    tasks: BTreeMap<String, Task>,
    /// RunTask's idempotency: the same clientToken gets the same tasks.
    by_client_token: HashMap<String, Vec<String>>,
    next_task: usize,
    /// When set, RunTask places nothing and answers this failure reason.
    placement_failure: Option<String>,
    /// DB_HOST of the `app` container per task definition revision.
    db_hosts: BTreeMap<u32, String>,
    latest_revision: u32,
}

impl EcsState {
    fn new_task(&mut self) -> String {
        self.next_task += 1;
        let arn = format!("{TASK_ARN_PREFIX}{:032x}", self.next_task);
        self.tasks.insert(arn.clone(), running(&arn));
        arn
    }

    fn db_host(&self, revision: u32) -> String {
        self.db_hosts
            .get(&revision)
            .cloned()
            .unwrap_or_else(|| "db.internal".to_string())
    }
}

fn running(arn: &str) -> Task {
    Task::builder()
        .task_arn(arn)
        .last_status("RUNNING")
        .desired_status("RUNNING")
        .started_at(DateTime::from_secs(1_700_000_000))
        .containers(
            Container::builder()
                .name("app")
                .last_status("RUNNING")
                .build(),
        )
        .containers(
            Container::builder()
                .name("log-router")
                .last_status("RUNNING")
                .build(),
        )
        .build()
}

/// A task that ran and stopped, with (container, exit code) for `app` and `log-router`.
fn stopped(arn: &str, app: i32, log_router: i32) -> Task {
    Task::builder()
        .task_arn(arn)
        .last_status("STOPPED")
        .desired_status("STOPPED")
        .started_at(DateTime::from_secs(1_700_000_000))
        .stopped_at(DateTime::from_secs(1_700_000_030))
        .stop_code(TaskStopCode::EssentialContainerExited)
        .stopped_reason("Essential container in task exited")
        .containers(Container::builder().name("app").exit_code(app).build())
        .containers(
            Container::builder()
                .name("log-router")
                .exit_code(log_router)
                .build(),
        )
        .build()
}

const PULL_ERROR: &str = "CannotPullContainerError: pull image manifest has been retried 5 time(s): failed to resolve ref 123456789012.dkr.ecr.us-east-1.amazonaws.com/migrate:v9: not found";

fn never_started(arn: &str) -> Task {
    Task::builder()
        .task_arn(arn)
        .last_status("STOPPED")
        .desired_status("STOPPED")
        .stop_code(TaskStopCode::TaskFailedToStart)
        .stopped_reason(PULL_ERROR)
        .containers(Container::builder().name("app").reason(PULL_ERROR).build())
        .containers(Container::builder().name("log-router").build())
        .build()
}

/// `family`, `family:revision` or a task definition ARN -> (family, revision).
fn parse_task_definition(reference: &str, latest: u32) -> (String, u32) {
    let tail = reference.rsplit('/').next().unwrap_or(reference);
    match tail.split_once(':') {
        Some((family, revision)) => (family.to_string(), revision.parse().unwrap()),
        None => (tail.to_string(), latest),
    }
}

fn task_definition(family: &str, revision: u32, db_host: &str) -> TaskDefinition {
    TaskDefinition::builder()
        .task_definition_arn(format!("{TASK_DEFINITION_ARN_PREFIX}{family}:{revision}"))
        .family(family)
        .revision(revision as i32)
        .container_definitions(
            ContainerDefinition::builder()
                .name("app")
                .image("123456789012.dkr.ecr.us-east-1.amazonaws.com/migrate:v9")
                .essential(true)
                .environment(
                    KeyValuePair::builder()
                        .name("DB_HOST")
                        .value(db_host)
                        .build(),
                )
                .environment(
                    KeyValuePair::builder()
                        .name("LOG_LEVEL")
                        .value("info")
                        .build(),
                )
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("log-router")
                .image("public.ecr.aws/aws-observability/aws-for-fluent-bit:stable")
                .essential(false)
                .build(),
        )
        .build()
}

struct EcsRules {
    all: Vec<Rule>,
    throttled_describe: Rule,
}

fn ecs_rules(state: &Arc<Mutex<EcsState>>, throttle: &Arc<AtomicBool>) -> EcsRules {
    // First in the list: while `throttle` is set, DescribeTasks is throttled. A plain
    // `then_error` rule, so that the SDK's retries get the same error again.
    let throttled_describe = {
        let throttle = throttle.clone();
        mock!(aws_sdk_ecs::Client::describe_tasks)
            .match_requests(move |_| throttle.load(Ordering::SeqCst))
            .then_error(|| {
                DescribeTasksError::generic(
                    ErrorMetadata::builder()
                        .code("ThrottlingException")
                        .message("Rate exceeded")
                        .build(),
                )
            })
    };
    let describe_definition = {
        let state = state.clone();
        mock!(aws_sdk_ecs::Client::describe_task_definition).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            let reference = input.task_definition().unwrap_or_default().to_string();
            s.log.push("DescribeTaskDefinition".into());
            s.described_definitions.push(reference.clone());
            let latest = s.latest_revision.max(1);
            let (family, revision) = parse_task_definition(&reference, latest);
            let definition = task_definition(&family, revision, &s.db_host(revision));
            DescribeTaskDefinitionOutput::builder()
                .task_definition(definition)
                .build()
        })
    };
    let run_task = {
        let state = state.clone();
        mock!(aws_sdk_ecs::Client::run_task).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.log.push("RunTask".into());
            s.runs.push(input.clone());
            if let Some(reason) = s.placement_failure.clone() {
                let failures = (0..input.count().unwrap_or(1)).map(|_| {
                    Failure::builder()
                        .reason(&reason)
                        .detail("no container instance met all of its requirements")
                        .build()
                });
                return RunTaskOutput::builder()
                    .set_failures(Some(failures.collect()))
                    .build();
            }
            let token = input.client_token().unwrap_or_default().to_string();
            let arns = match s.by_client_token.get(&token) {
                Some(arns) if !token.is_empty() => arns.clone(),
                _ => {
                    let arns: Vec<String> = (0..input.count().unwrap_or(1))
                        .map(|_| s.new_task())
                        .collect();
                    s.by_client_token.insert(token, arns.clone());
                    arns
                }
            };
            let tasks = arns.iter().map(|a| s.tasks[a].clone()).collect();
            RunTaskOutput::builder().set_tasks(Some(tasks)).build()
        })
    };
    let start_task = {
        let state = state.clone();
        mock!(aws_sdk_ecs::Client::start_task).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.log.push("StartTask".into());
            s.starts.push(input.clone());
            let tasks = input
                .container_instances()
                .iter()
                .map(|_| {
                    let arn = s.new_task();
                    s.tasks[&arn].clone()
                })
                .collect();
            StartTaskOutput::builder().set_tasks(Some(tasks)).build()
        })
    };
    let describe_tasks = {
        let state = state.clone();
        mock!(aws_sdk_ecs::Client::describe_tasks).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.log.push("DescribeTasks".into());
            s.describe_tasks += 1;
            assert!(input.tasks().len() <= 100, "DescribeTasks takes 100 tasks");
            assert_eq!(input.cluster(), Some(CLUSTER));
            let mut out = DescribeTasksOutput::builder();
            for arn in input.tasks() {
                out = match s.tasks.get(arn) {
                    Some(task) => out.tasks(task.clone()),
                    None => out.failures(Failure::builder().arn(arn).reason("MISSING").build()),
                };
            }
            out.build()
        })
    };
    let stop_task = {
        let state = state.clone();
        mock!(aws_sdk_ecs::Client::stop_task).then_compute_output(move |input| {
            let mut s = state.lock().unwrap();
            s.log.push("StopTask".into());
            s.stops.push(input.clone());
            let arn = input.task().unwrap_or_default().to_string();
            let mut task = stopped(&arn, 143, 143);
            task.stop_code = Some(TaskStopCode::UserInitiated);
            task.stopped_reason = input.reason().map(str::to_string);
            s.tasks.insert(arn, task.clone());
            StopTaskOutput::builder().task(task).build()
        })
    };
    EcsRules {
        all: vec![
            throttled_describe.clone(),
            describe_definition,
            run_task,
            start_task,
            describe_tasks,
            stop_task,
        ],
        throttled_describe,
    }
}

// ---------------------------------------------------------------------------------------
// The harness: mocked clients over both fakes, and CloudFormation-shaped requests.

struct Harness {
    clients: Clients,
    ssm: Arc<Mutex<SsmState>>,
    ecs: Arc<Mutex<EcsState>>,
    throttle: Arc<AtomicBool>,
    throttled_describe: Rule,
}

impl Harness {
    fn new() -> Self {
        let ssm = Arc::new(Mutex::new(SsmState::default()));
        let ecs = Arc::new(Mutex::new(EcsState::default()));
        let throttle = Arc::new(AtomicBool::new(false));
        let ssm_rules = ssm_rules(&ssm);
        let ecs_rules = ecs_rules(&ecs, &throttle);
        // Standard retries as in production, with a backoff short enough for a test.
        let retry = RetryConfig::standard()
            .with_max_attempts(MAX_ATTEMPTS)
            .with_initial_backoff(Duration::from_millis(1))
            .with_max_backoff(Duration::from_millis(5));
        let ecs_client = {
            let retry = retry.clone();
            mock_client!(aws_sdk_ecs, RuleMode::MatchAny, &ecs_rules.all, |b| b
                .retry_config(retry.clone()))
        };
        let ssm_client = mock_client!(aws_sdk_ssm, RuleMode::MatchAny, &ssm_rules, |b| b
            .retry_config(retry.clone()));
        Self {
            clients: Clients {
                ecs: ecs_client,
                ssm: ssm_client,
            },
            ssm,
            ecs,
            throttle,
            throttled_describe: ecs_rules.throttled_describe,
        }
    }

    fn ecs(&self) -> MutexGuard<'_, EcsState> {
        self.ecs.lock().unwrap()
    }

    fn ssm(&self) -> MutexGuard<'_, SsmState> {
        self.ssm.lock().unwrap()
    }

    async fn call(&self, event: Value) -> ProgressEvent {
        let request = HandlerRequest::decode(event).expect("a well-formed envelope");
        let event = taskrun::handle_request(&request, &self.clients).await;
        assert_no_nulls(&event.to_value(), "$");
        event
    }

    /// Every task ECS knows becomes what `f` makes of it (`None`: ECS forgets it).
    fn set_tasks(&self, f: impl Fn(&str) -> Option<Task>) {
        let mut s = self.ecs();
        let arns: Vec<String> = s.tasks.keys().cloned().collect();
        for arn in arns {
            match f(&arn) {
                Some(task) => s.tasks.insert(arn, task),
                None => s.tasks.remove(&arn),
            };
        }
    }

    fn record(&self, id: &str) -> Option<Value> {
        self.ssm()
            .parameters
            .get(&format!("{RUNS_PATH}/{id}"))
            .map(|p| serde_json::from_str(&p.value).expect("a JSON run record"))
    }

    fn edit_record(&self, id: &str, edit: impl FnOnce(&mut Value)) {
        let mut s = self.ssm();
        let parameter = s
            .parameters
            .get_mut(&format!("{RUNS_PATH}/{id}"))
            .expect("a stored record");
        let mut record: Value = serde_json::from_str(&parameter.value).unwrap();
        edit(&mut record);
        parameter.value = record.to_string();
    }

    fn run_counts(&self) -> Vec<i32> {
        self.ecs()
            .runs
            .iter()
            .map(|r| r.count().unwrap_or(1))
            .collect()
    }

    /// CREATE, then the callbacks until the run is decided with every task exiting 0.
    async fn create_and_succeed(&self, logical_id: &str, properties: Value) -> Value {
        let create = envelope(
            "CREATE",
            &format!("create-{logical_id}"),
            logical_id,
            properties,
        );
        let mut event = self.call(create.clone()).await;
        if event.status == OperationStatus::InProgress {
            self.set_tasks(|arn| Some(stopped(arn, 0, 0)));
            event = self
                .call(with_context(
                    create,
                    event.callback_context.clone().unwrap(),
                ))
                .await;
        }
        assert_eq!(event.status, OperationStatus::Success, "{event:?}");
        event.resource_model.unwrap()
    }
}

/// `cfn test` rejects explicit nulls: absent fields must be left out.
fn assert_no_nulls(value: &Value, path: &str) {
    match value {
        Value::Null => panic!("null at {path}"),
        Value::Object(map) => map
            .iter()
            .for_each(|(k, v)| assert_no_nulls(v, &format!("{path}.{k}"))),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .for_each(|(i, v)| assert_no_nulls(v, &format!("{path}[{i}]"))),
        _ => {}
    }
}

/// The top-level keys of an event, sorted.
fn keys(event: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = event
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    keys
}

fn envelope(action: &str, bearer_token: &str, logical_id: &str, properties: Value) -> Value {
    json!({
        "action": action,
        "awsAccountId": "123456789012",
        "bearerToken": bearer_token,
        "region": "us-east-1",
        "resourceType": "Org::ECS::TaskRun",
        "resourceTypeVersion": "00000001",
        "stackId": STACK_ID,
        "callbackContext": null,
        "requestData": {
            "callerCredentials": {
                "accessKeyId": "ASIAEXAMPLEEXAMPLE",
                "secretAccessKey": "secret",
                "sessionToken": "session"
            },
            "logicalResourceId": logical_id,
            "resourceProperties": properties,
            "previousResourceProperties": null,
            "stackTags": {"team": "data", "aws:cloudformation:stack-name": "app"}
        }
    })
}

fn with_context(mut event: Value, context: Value) -> Value {
    event["callbackContext"] = context;
    event
}

fn with_previous(mut event: Value, previous: Value) -> Value {
    event["requestData"]["previousResourceProperties"] = previous;
    event
}

/// The required properties plus `extra`, given as CloudFormation sends them (string scalars).
fn properties(extra: Value) -> Value {
    let mut properties = json!({"Cluster": CLUSTER, "TaskDefinition": "migrate"});
    for (k, v) in extra.as_object().unwrap() {
        properties[k] = v.clone();
    }
    properties
}

fn with_id(mut properties: Value, id: &str) -> Value {
    properties["Id"] = json!(id);
    properties
}

fn id_of(model: &Value) -> String {
    model["Id"].as_str().expect("an Id").to_string()
}

fn failed_with(event: &ProgressEvent, code: HandlerErrorCode) -> &str {
    assert_eq!(event.status, OperationStatus::Failed, "{event:?}");
    assert_eq!(event.error_code, Some(code), "{event:?}");
    assert!(event.resource_model.is_none(), "{event:?}");
    assert!(event.callback_context.is_none(), "{event:?}");
    event.message.as_deref().unwrap_or_default()
}

fn task_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap()
}

// ---------------------------------------------------------------------------------------
// CREATE

#[tokio::test]
async fn create_starts_one_task_and_follows_it_to_success() {
    let h = Harness::new();
    let props = properties(json!({
        "Count": "1", "PollInterval": "5", "Timeout": "600",
        "Tags": [{"Key": "purpose", "Value": "migrate"}],
        "Overrides": {"ContainerOverrides": [{"Name": "app", "Command": ["./migrate", "up"],
            "Environment": [{"Name": "DRY_RUN", "Value": "false"}]}]}
    }));
    let create = envelope("CREATE", "token-create-1", "Migrate", props);

    // First invocation: the task starts, CloudFormation is told to come back.
    let event = h.call(create.clone()).await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    assert_eq!(event.callback_delay_seconds, Some(5));
    let model = event.resource_model.clone().unwrap();
    let id = id_of(&model);
    assert!(id.starts_with("Migrate-"), "{id}");
    let context = event.callback_context.clone().unwrap();
    assert_eq!(
        context,
        json!({"id": id, "runToken": "token-create-1", "polls": 0})
    );
    assert_eq!(model["Status"], "RUNNING");
    assert_eq!(model["Count"], 1, "scalars are typed in the model");
    assert!(model.get("FinishedAt").is_none());
    {
        let ecs = h.ecs();
        assert_eq!(ecs.log, ["DescribeTaskDefinition", "RunTask"]);
        assert_eq!(ecs.described_definitions, ["migrate"]);
        let run = &ecs.runs[0];
        assert_eq!(run.cluster(), Some(CLUSTER));
        assert_eq!(
            run.task_definition(),
            Some(format!("{TASK_DEFINITION_ARN_PREFIX}migrate:1").as_str()),
            "the run uses the revision it resolved"
        );
        assert_eq!(run.count(), Some(1));
        assert!(run.client_token().is_some_and(|t| !t.is_empty()));
        assert_eq!(run.started_by(), Some(id.as_str()));
        let tags: Vec<(&str, &str)> = run
            .tags()
            .iter()
            .map(|t| (t.key().unwrap(), t.value().unwrap()))
            .collect();
        assert_eq!(
            tags,
            [("purpose", "migrate"), ("team", "data")],
            "no aws: tags"
        );
        let app = &run.overrides().unwrap().container_overrides()[0];
        assert_eq!(app.name(), Some("app"));
        assert_eq!(app.command(), ["./migrate", "up"]);
        assert_eq!(app.environment()[0].name(), Some("DRY_RUN"));
        assert_eq!(app.environment()[0].value(), Some("false"));
        assert_eq!(model["TaskArns"], json!([ecs.tasks.keys().next().unwrap()]));
    }
    {
        let ssm = h.ssm();
        assert_eq!(ssm.puts.len(), 1);
        let put = &ssm.puts[0];
        assert_eq!(put.name(), Some(format!("{RUNS_PATH}/{id}").as_str()));
        assert_eq!(put.r#type(), Some(&ParameterType::SecureString));
        assert_eq!(put.overwrite(), Some(true));
        let stored = &ssm.parameters[&format!("{RUNS_PATH}/{id}")];
        assert_eq!(stored.kind, Some(ParameterType::SecureString));
        assert_eq!(stored.tier, Some(ParameterTier::IntelligentTiering));
    }
    assert_eq!(h.record(&id).unwrap()["run"]["status"], "RUNNING");

    // A callback while the task runs: still in progress, one more poll.
    let callback = with_context(create.clone(), context);
    let event = h.call(callback.clone()).await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    assert_eq!(event.callback_delay_seconds, Some(5));
    assert_eq!(event.callback_context.as_ref().unwrap()["polls"], 1);
    assert_eq!(event.message.as_deref(), Some("1 of 1 tasks still running"));
    assert_eq!(h.ecs().describe_tasks, 1);
    assert_eq!(h.ecs().runs.len(), 1, "a callback never starts tasks");

    // The task stops with exit code 0: SUCCESS, with the outputs.
    h.set_tasks(|arn| Some(stopped(arn, 0, 0)));
    let event = h
        .call(with_context(
            create,
            event.callback_context.clone().unwrap(),
        ))
        .await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert!(event.callback_context.is_none() && event.callback_delay_seconds.is_none());
    let model = event.resource_model.clone().unwrap();
    let arn = h.ecs().tasks.keys().next().unwrap().clone();
    assert_eq!(model["Id"], id.as_str());
    assert_eq!(model["Status"], "SUCCEEDED");
    assert_eq!(model["TaskArns"], json!([arn]));
    assert_eq!(
        model["Tasks"],
        json!([{
            "TaskArn": arn,
            "StopCode": "EssentialContainerExited",
            "StoppedReason": "Essential container in task exited",
            "Containers": [{"Name": "app", "ExitCode": 0}, {"Name": "log-router", "ExitCode": 0}]
        }])
    );
    assert!(model["StartedAt"].as_str().unwrap().ends_with('Z'));
    assert!(model["FinishedAt"].as_str().unwrap().ends_with('Z'));
    assert!(model.get("StatusReason").is_none());
    assert_eq!(h.record(&id).unwrap()["run"]["status"], "SUCCEEDED");
    assert_eq!(h.ecs().runs.len(), 1);
    assert!(h.ecs().stops.is_empty());
    assert_eq!(
        keys(&event.to_value()),
        ["resourceModel", "status"],
        "absent fields are left out"
    );
}

#[tokio::test]
async fn create_runs_tasks_in_batches_of_ten() {
    let h = Harness::new();
    let event = h
        .call(envelope(
            "CREATE",
            "token-batches",
            "Seed",
            properties(json!({"Count": "25"})),
        ))
        .await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    assert_eq!(h.run_counts(), [10, 10, 5]);
    let ecs = h.ecs();
    let mut tokens: Vec<&str> = ecs.runs.iter().map(|r| r.client_token().unwrap()).collect();
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3, "one clientToken per batch");
    let model = event.resource_model.unwrap();
    assert_eq!(model["TaskArns"].as_array().unwrap().len(), 25);
    assert_eq!(ecs.tasks.len(), 25);
    let id = id_of(&model);
    assert!(ecs.runs.iter().all(|r| r.started_by() == Some(id.as_str())));
}

#[tokio::test]
async fn create_with_count_zero_succeeds_without_running() {
    let h = Harness::new();
    let event = h
        .call(envelope(
            "CREATE",
            "token-zero",
            "Nothing",
            properties(json!({"Count": "0"})),
        ))
        .await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert_eq!(
        event.message.as_deref(),
        Some("Count is 0: no task was run")
    );
    let model = event.resource_model.unwrap();
    assert_eq!(model["Status"], "SUCCEEDED");
    assert_eq!(model["TaskArns"], json!([]));
    assert!(
        h.ecs().log.is_empty(),
        "no ECS call at all: {:?}",
        h.ecs().log
    );
    assert_eq!(
        h.record(&id_of(&model)).unwrap()["run"]["status"],
        "SUCCEEDED"
    );
}

#[tokio::test]
async fn redelivered_create_resumes_instead_of_starting_again() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-redelivered",
        "Migrate",
        properties(json!({"Count": "2"})),
    );
    let first = h.call(create.clone()).await;
    let second = h.call(create).await;
    assert_eq!(first.status, OperationStatus::InProgress);
    assert_eq!(second.status, OperationStatus::InProgress, "{second:?}");
    assert_eq!(second.callback_context, first.callback_context);
    assert_eq!(
        second.resource_model.as_ref().unwrap()["TaskArns"],
        first.resource_model.as_ref().unwrap()["TaskArns"]
    );
    assert_eq!(h.ecs().runs.len(), 1, "RunTask was called once");
    assert_eq!(h.ecs().tasks.len(), 2);
}

/// An invocation that died between RunTask and writing its record: the redelivery calls
/// RunTask again, with the same clientToken, so ECS answers with the same tasks.
#[tokio::test]
async fn redelivery_after_a_lost_record_reuses_the_client_token() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-lost",
        "Migrate",
        properties(json!({"Count": "2"})),
    );
    let first = h.call(create.clone()).await;
    let id = id_of(first.resource_model.as_ref().unwrap());
    h.ssm().parameters.clear();
    let second = h.call(create).await;
    assert_eq!(second.status, OperationStatus::InProgress, "{second:?}");
    assert_eq!(id_of(second.resource_model.as_ref().unwrap()), id);
    assert_eq!(
        second.resource_model.as_ref().unwrap()["TaskArns"],
        first.resource_model.as_ref().unwrap()["TaskArns"]
    );
    let ecs = h.ecs();
    assert_eq!(ecs.runs.len(), 2);
    assert_eq!(ecs.runs[0].client_token(), ecs.runs[1].client_token());
    assert_eq!(ecs.tasks.len(), 2, "no task started twice");
    assert!(h.record(&id).is_some());
}

/// How a run ends once its one task has stopped, and what a CREATE answers then.
#[tokio::test]
async fn create_outcomes_once_the_task_stopped() {
    struct Case {
        name: &'static str,
        task: fn(&str) -> Option<Task>,
        want: Result<(), &'static [&'static str]>,
    }
    let cases = [
        Case {
            name: "exit 0",
            task: |arn| Some(stopped(arn, 0, 0)),
            want: Ok(()),
        },
        Case {
            name: "the sidecar exits 1, the app 0",
            task: |arn| Some(stopped(arn, 0, 1)),
            want: Ok(()),
        },
        Case {
            name: "non-zero exit",
            task: |arn| Some(stopped(arn, 3, 0)),
            want: Err(&[
                "container app exited with code 3",
                "EssentialContainerExited: Essential container in task exited",
            ]),
        },
        Case {
            name: "never started",
            task: |arn| Some(never_started(arn)),
            want: Err(&[
                "never started",
                "TaskFailedToStart",
                "container app: CannotPullContainerError",
            ]),
        },
        Case {
            name: "forgotten by ECS (DescribeTasks failure MISSING)",
            task: |_| None,
            want: Err(&["ECS no longer knows this task"]),
        },
    ];
    for case in cases {
        let h = Harness::new();
        let create = envelope(
            "CREATE",
            "token-outcome",
            "Migrate",
            properties(json!({"Count": "1"})),
        );
        let started = h.call(create.clone()).await;
        assert_eq!(started.status, OperationStatus::InProgress, "{}", case.name);
        let id = id_of(started.resource_model.as_ref().unwrap());
        let arn = h.ecs().tasks.keys().next().unwrap().clone();
        h.set_tasks(case.task);
        // Past the grace period in which ECS may not describe a new task yet.
        h.edit_record(&id, |record| {
            let started_at = record["run"]["startedAt"].as_f64().unwrap();
            record["run"]["startedAt"] = json!(started_at - 120.0);
        });
        let event = h
            .call(with_context(create, started.callback_context.unwrap()))
            .await;
        match case.want {
            Ok(()) => {
                assert_eq!(
                    event.status,
                    OperationStatus::Success,
                    "{}: {event:?}",
                    case.name
                );
                assert_eq!(
                    event.resource_model.as_ref().unwrap()["Status"],
                    "SUCCEEDED"
                );
                assert_eq!(
                    h.record(&id).unwrap()["run"]["status"],
                    "SUCCEEDED",
                    "{}",
                    case.name
                );
                assert!(h.ssm().deletes.is_empty(), "{}", case.name);
            }
            Err(fragments) => {
                let message = failed_with(&event, HandlerErrorCode::GeneralServiceException);
                assert!(message.contains(task_id(&arn)), "{}: {message}", case.name);
                for fragment in fragments {
                    assert!(message.contains(fragment), "{}: {message}", case.name);
                }
                assert!(
                    h.record(&id).is_none(),
                    "{}: a failed CREATE leaves no record",
                    case.name
                );
                assert_eq!(
                    h.ssm().deletes,
                    [format!("{RUNS_PATH}/{id}")],
                    "{}",
                    case.name
                );
            }
        }
        assert_eq!(h.ecs().runs.len(), 1, "{}", case.name);
        // Only a task ECS no longer describes is stopped (it may still run unseen).
        let stopped: Vec<String> = h
            .ecs()
            .stops
            .iter()
            .filter_map(|s| s.task().map(str::to_string))
            .collect();
        let want_stopped = if case.name.contains("MISSING") {
            vec![arn.clone()]
        } else {
            vec![]
        };
        assert_eq!(stopped, want_stopped, "{}", case.name);
    }
}

#[tokio::test]
async fn create_fails_at_once_when_no_task_could_be_placed() {
    let h = Harness::new();
    h.ecs().placement_failure = Some("RESOURCE:MEMORY".into());
    let event = h
        .call(envelope(
            "CREATE",
            "token-placement",
            "Migrate",
            properties(json!({"Count": "1", "LaunchType": "EC2"})),
        ))
        .await;
    let message = failed_with(&event, HandlerErrorCode::GeneralServiceException);
    assert!(
        message.contains("task not placed: RESOURCE:MEMORY"),
        "{message}"
    );
    assert_eq!(h.ecs().log, ["DescribeTaskDefinition", "RunTask"]);
    assert_eq!(h.ecs().describe_tasks, 0);
    assert!(h.ssm().parameters.is_empty(), "no record is left behind");
}

#[tokio::test]
async fn timeout_stops_the_running_tasks_and_fails() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-timeout",
        "Migrate",
        properties(json!({"Count": "1", "Timeout": "1"})),
    );
    let started = h.call(create.clone()).await;
    assert_eq!(started.status, OperationStatus::InProgress);
    let id = id_of(started.resource_model.as_ref().unwrap());
    let arn = h.ecs().tasks.keys().next().unwrap().clone();
    // Rather than sleeping past the deadline, move it into the past.
    h.edit_record(&id, |record| {
        let started_at = record["run"]["startedAt"].as_f64().unwrap();
        assert_eq!(
            record["run"]["deadline"].as_f64().unwrap(),
            started_at + 1.0
        );
        record["run"]["deadline"] = json!(started_at - 10.0);
    });
    let event = h
        .call(with_context(create, started.callback_context.unwrap()))
        .await;
    let message = failed_with(&event, HandlerErrorCode::NotStabilized);
    assert!(
        message.contains("timed out after 1 s with 1 of 1 tasks still running"),
        "{message}"
    );
    assert!(message.contains(task_id(&arn)), "{message}");
    let ecs = h.ecs();
    assert_eq!(
        ecs.log,
        [
            "DescribeTaskDefinition",
            "RunTask",
            "DescribeTasks",
            "StopTask"
        ]
    );
    assert_eq!(ecs.stops.len(), 1);
    assert_eq!(ecs.stops[0].task(), Some(arn.as_str()));
    assert_eq!(ecs.stops[0].cluster(), Some(CLUSTER));
    let reason = ecs.stops[0].reason().unwrap();
    assert!(reason.contains("Timeout of 1 s passed"), "{reason}");
    assert!(reason.len() <= 255);
    assert!(
        h.record(&id).is_none(),
        "a timed-out CREATE leaves no record"
    );
}

#[tokio::test]
async fn throttled_describe_tasks_waits_for_the_next_callback() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-throttle",
        "Migrate",
        properties(json!({"Count": "1"})),
    );
    let started = h.call(create.clone()).await;
    let id = id_of(started.resource_model.as_ref().unwrap());
    let context = started.callback_context.unwrap();

    h.throttle.store(true, Ordering::SeqCst);
    let event = h.call(with_context(create.clone(), context)).await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    assert_eq!(event.callback_context.as_ref().unwrap()["polls"], 1);
    let message = event.message.clone().unwrap();
    assert!(message.contains("will look again"), "{message}");
    assert!(message.contains("ThrottlingException"), "{message}");
    assert_eq!(
        h.throttled_describe.num_calls(),
        MAX_ATTEMPTS as usize,
        "the SDK retried until its attempts ran out"
    );
    assert!(h.ecs().stops.is_empty());
    assert_eq!(h.ecs().runs.len(), 1);
    assert_eq!(h.record(&id).unwrap()["run"]["status"], "RUNNING");

    // The throttling passes: the next callback decides.
    h.throttle.store(false, Ordering::SeqCst);
    h.set_tasks(|arn| Some(stopped(arn, 0, 0)));
    let event = h
        .call(with_context(create, event.callback_context.unwrap()))
        .await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert_eq!(h.throttled_describe.num_calls(), MAX_ATTEMPTS as usize);
}

#[tokio::test]
async fn unreadable_tasks_past_the_deadline_are_stopped_and_time_out() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-throttle-deadline",
        "Migrate",
        properties(json!({"Count": "1", "Timeout": "1"})),
    );
    let started = h.call(create.clone()).await;
    let id = id_of(started.resource_model.as_ref().unwrap());
    let arn = h.ecs().tasks.keys().next().unwrap().clone();
    h.edit_record(&id, |record| {
        let started_at = record["run"]["startedAt"].as_f64().unwrap();
        record["run"]["deadline"] = json!(started_at - 10.0);
    });
    h.throttle.store(true, Ordering::SeqCst);
    let event = h
        .call(with_context(create, started.callback_context.unwrap()))
        .await;
    let message = failed_with(&event, HandlerErrorCode::NotStabilized);
    assert!(message.contains("tasks unreadable"), "{message}");
    let ecs = h.ecs();
    assert_eq!(ecs.stops.len(), 1, "nothing keeps running unobserved");
    assert_eq!(ecs.stops[0].task(), Some(arn.as_str()));
    assert!(
        h.record(&id).is_none(),
        "a timed-out CREATE leaves no record"
    );
}

#[tokio::test]
async fn a_task_not_yet_described_is_waited_for() {
    let h = Harness::new();
    let create = envelope(
        "CREATE",
        "token-eventual",
        "Migrate",
        properties(json!({"Count": "1"})),
    );
    let started = h.call(create.clone()).await;
    // ECS is eventually consistent: right after RunTask, DescribeTasks may say MISSING.
    h.set_tasks(|_| None);
    let event = h
        .call(with_context(create, started.callback_context.unwrap()))
        .await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    assert!(event
        .message
        .as_deref()
        .unwrap_or_default()
        .contains("waiting for ECS to report 1 new task"));
    assert!(h.ecs().stops.is_empty());
}

#[tokio::test]
async fn instances_use_one_start_task_call() {
    let h = Harness::new();
    let instances = [
        "arn:aws:ecs:us-east-1:123456789012:container-instance/main/0f1e2d3c4b5a69788796a5b4c3d2e1f0",
        "arn:aws:ecs:us-east-1:123456789012:container-instance/main/1f1e2d3c4b5a69788796a5b4c3d2e1f0",
    ];
    let event = h
        .call(envelope(
            "CREATE",
            "token-instances",
            "Migrate",
            properties(json!({"Count": "5", "Instances": instances})),
        ))
        .await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    let model = event.resource_model.unwrap();
    let id = id_of(&model);
    let ecs = h.ecs();
    assert!(ecs.runs.is_empty(), "no RunTask with Instances");
    assert_eq!(ecs.starts.len(), 1);
    let start = &ecs.starts[0];
    assert_eq!(start.container_instances(), instances);
    assert_eq!(start.cluster(), Some(CLUSTER));
    assert_eq!(start.started_by(), Some(id.as_str()));
    assert_eq!(
        start.task_definition(),
        Some(format!("{TASK_DEFINITION_ARN_PREFIX}migrate:1").as_str())
    );
    assert_eq!(model["TaskArns"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn invalid_properties_name_every_path() {
    let h = Harness::new();
    let event = h
        .call(envelope(
            "CREATE",
            "token-invalid",
            "Migrate",
            json!({"TaskDefinition": "migrate", "Count": "lots", "PollInterval": "0"}),
        ))
        .await;
    let message = failed_with(&event, HandlerErrorCode::InvalidRequest);
    for fragment in [
        "/Count: value is not of type \"integer\"",
        "/PollInterval: value is less than the minimum of 1",
        "\"Cluster\" is a required property",
    ] {
        assert!(message.contains(fragment), "{fragment} in {message}");
    }
    assert!(h.ecs().log.is_empty());
    assert!(h.ssm().puts.is_empty() && h.ssm().gets.is_empty());
}

// ---------------------------------------------------------------------------------------
// UPDATE

struct UpdateCase {
    name: &'static str,
    before: Value,
    after: Value,
    /// DB_HOST of revision 2 of the task definition (revision 1 has "db.internal").
    revision_2_db_host: &'static str,
    /// The RunTask task definition of the new run, or `None` when the update runs nothing.
    runs: Option<&'static str>,
    message: &'static str,
    /// What the update passes to DescribeTaskDefinition; `@` stands for the ARN prefix.
    describes: &'static [&'static str],
}

fn criteria() -> Value {
    json!([{"Container": "app", "EnvironmentKeys": ["DB_HOST"]}])
}

#[tokio::test]
async fn update_runs_the_tasks_only_when_it_should() {
    let cases = [
        UpdateCase {
            name: "RunOnUpdate false",
            before: properties(json!({"RunOnUpdate": "false", "Triggers": ["v1"]})),
            after: properties(json!({"RunOnUpdate": "false", "Triggers": ["v2"]})),
            revision_2_db_host: "db.internal",
            runs: None,
            message: "not run: RunOnUpdate is false",
            describes: &[],
        },
        UpdateCase {
            name: "UpdateCriteria unchanged",
            before: properties(json!({"UpdateCriteria": criteria(), "Timeout": "600"})),
            after: properties(json!({"UpdateCriteria": criteria(), "Timeout": "900"})),
            revision_2_db_host: "db.internal",
            runs: None,
            message: "not run: no UpdateCriteria environment value changed",
            describes: &["migrate"],
        },
        UpdateCase {
            name: "new revision, same DB_HOST",
            before: properties(
                json!({"UpdateCriteria": criteria(), "TaskDefinition": "migrate:1"}),
            ),
            after: properties(json!({"UpdateCriteria": criteria(), "TaskDefinition": "migrate:2"})),
            revision_2_db_host: "db.internal",
            runs: None,
            message: "not run: no UpdateCriteria environment value changed",
            describes: &["migrate:2"],
        },
        UpdateCase {
            name: "UpdateCriteria changed",
            before: properties(
                json!({"UpdateCriteria": criteria(), "TaskDefinition": "migrate:1"}),
            ),
            after: properties(json!({"UpdateCriteria": criteria(), "TaskDefinition": "migrate:2"})),
            revision_2_db_host: "db2.internal",
            runs: Some("migrate:2"),
            message: "run: changed app: DB_HOST",
            describes: &["migrate:2", "migrate:2"],
        },
        UpdateCase {
            name: "UpdateCriteria unchanged but Triggers changed",
            before: properties(json!({"UpdateCriteria": criteria(), "Triggers": ["v1"]})),
            after: properties(json!({"UpdateCriteria": criteria(), "Triggers": ["v2"]})),
            revision_2_db_host: "db.internal",
            runs: Some("migrate:1"),
            message: "run: Triggers changed",
            describes: &["migrate"],
        },
        UpdateCase {
            name: "no criteria: any change runs",
            before: properties(json!({"Timeout": "600"})),
            after: properties(json!({"Timeout": "900"})),
            revision_2_db_host: "db.internal",
            runs: Some("migrate:1"),
            message: "run: the properties changed",
            describes: &["migrate"],
        },
    ];
    for case in cases {
        let h = Harness::new();
        h.ecs().db_hosts.insert(2, case.revision_2_db_host.into());
        let created = h.create_and_succeed("Migrate", case.before.clone()).await;
        let id = id_of(&created);
        let runs_before = h.ecs().runs.len();
        let describes_before = h.ecs().described_definitions.len();
        let update = with_previous(
            envelope(
                "UPDATE",
                "token-update",
                "Migrate",
                with_id(case.after.clone(), &id),
            ),
            with_id(case.before.clone(), &id),
        );
        let event = h.call(update.clone()).await;
        assert_eq!(
            event.message.as_deref(),
            Some(case.message),
            "{}: {event:?}",
            case.name
        );
        let model = event.resource_model.clone().unwrap();
        assert_eq!(model["Id"], id.as_str(), "{}", case.name);
        match case.runs {
            None => {
                assert_eq!(
                    event.status,
                    OperationStatus::Success,
                    "{}: {event:?}",
                    case.name
                );
                assert_eq!(h.ecs().runs.len(), runs_before, "{}: no RunTask", case.name);
                for output in ["TaskArns", "Status", "Tasks", "StartedAt", "FinishedAt"] {
                    assert_eq!(
                        model[output], created[output],
                        "{}: {output} kept",
                        case.name
                    );
                }
                // The new properties, typed, are kept for the next update and for Read.
                let record = h.record(&id).unwrap();
                assert_eq!(
                    record["properties"],
                    taskrun::schema::prepare(case.after.clone()).unwrap(),
                    "{}",
                    case.name
                );
            }
            Some(revision) => {
                assert_eq!(
                    event.status,
                    OperationStatus::InProgress,
                    "{}: {event:?}",
                    case.name
                );
                let ecs = h.ecs();
                assert_eq!(
                    ecs.runs.len(),
                    runs_before + 1,
                    "{}: one RunTask",
                    case.name
                );
                let run = ecs.runs.last().unwrap();
                assert_eq!(
                    run.task_definition(),
                    Some(format!("{TASK_DEFINITION_ARN_PREFIX}{revision}").as_str()),
                    "{}",
                    case.name
                );
                assert_eq!(run.started_by(), Some(id.as_str()), "{}", case.name);
                assert_ne!(
                    run.client_token(),
                    ecs.runs[0].client_token(),
                    "{}: a new run, a new clientToken",
                    case.name
                );
                assert!(
                    ecs.stops.is_empty(),
                    "{}: the previous run had ended",
                    case.name
                );
                assert_eq!(model["Status"], "RUNNING", "{}", case.name);
                assert_ne!(model["TaskArns"], created["TaskArns"], "{}", case.name);
                assert_eq!(
                    event.callback_context.as_ref().unwrap(),
                    &json!({"id": id, "runToken": "token-update", "polls": 0}),
                    "{}",
                    case.name
                );
            }
        }
        let described = h.ecs().described_definitions[describes_before..].to_vec();
        let want: Vec<String> = case
            .describes
            .iter()
            .map(|d| match d.strip_prefix('@') {
                Some(revision) => format!("{TASK_DEFINITION_ARN_PREFIX}{revision}"),
                None => d.to_string(),
            })
            .collect();
        assert_eq!(described, want, "{}: task definitions described", case.name);
    }
}

#[tokio::test]
async fn update_stops_a_run_still_running_before_starting_the_next() {
    let h = Harness::new();
    let before = properties(json!({"Triggers": ["v1"]}));
    let create = envelope("CREATE", "token-create", "Migrate", before.clone());
    let started = h.call(create.clone()).await;
    assert_eq!(started.status, OperationStatus::InProgress);
    let id = id_of(started.resource_model.as_ref().unwrap());
    let old_arn = h.ecs().tasks.keys().next().unwrap().clone();
    // The CREATE run is still RUNNING (a run left behind, e.g. by a rollback) when the update comes.
    let update = with_previous(
        envelope(
            "UPDATE",
            "token-update",
            "Migrate",
            with_id(properties(json!({"Triggers": ["v2"]})), &id),
        ),
        with_id(before, &id),
    );
    let event = h.call(update).await;
    assert_eq!(event.status, OperationStatus::InProgress, "{event:?}");
    {
        let ecs = h.ecs();
        assert_eq!(
            ecs.log,
            [
                "DescribeTaskDefinition",
                "RunTask",
                "StopTask",
                "DescribeTaskDefinition",
                "RunTask"
            ],
            "stopped before the new run started"
        );
        assert_eq!(ecs.stops[0].task(), Some(old_arn.as_str()));
        let reason = ecs.stops[0].reason().unwrap();
        assert!(reason.contains("superseded by an update"), "{reason}");
        assert_ne!(
            event.resource_model.as_ref().unwrap()["TaskArns"],
            json!([old_arn])
        );
    }
    // The superseded operation's callback is stale now.
    let stale = h
        .call(with_context(create, started.callback_context.unwrap()))
        .await;
    let message = failed_with(&stale, HandlerErrorCode::ResourceConflict);
    assert!(message.contains("has started another run"), "{message}");
}

#[tokio::test]
async fn a_failed_update_run_keeps_the_record() {
    let h = Harness::new();
    let created = h
        .create_and_succeed("Migrate", properties(json!({"Triggers": ["v1"]})))
        .await;
    let id = id_of(&created);
    let update = with_previous(
        envelope(
            "UPDATE",
            "token-update",
            "Migrate",
            with_id(properties(json!({"Triggers": ["v2"]})), &id),
        ),
        with_id(properties(json!({"Triggers": ["v1"]})), &id),
    );
    let started = h.call(update.clone()).await;
    assert_eq!(started.status, OperationStatus::InProgress);
    h.set_tasks(|arn| Some(stopped(arn, 1, 0)));
    let event = h
        .call(with_context(update, started.callback_context.unwrap()))
        .await;
    let message = failed_with(&event, HandlerErrorCode::GeneralServiceException);
    assert!(
        message.contains("container app exited with code 1"),
        "{message}"
    );
    let record = h.record(&id).expect("the resource still exists");
    assert_eq!(record["run"]["status"], "FAILED");
    assert!(h.ssm().deletes.is_empty());
}

#[tokio::test]
async fn update_of_an_unknown_id_is_not_found() {
    let h = Harness::new();
    let id = "Migrate-0000000000000000";
    let event = h
        .call(with_previous(
            envelope(
                "UPDATE",
                "token-update",
                "Migrate",
                with_id(properties(json!({})), id),
            ),
            with_id(properties(json!({})), id),
        ))
        .await;
    let message = failed_with(&event, HandlerErrorCode::NotFound);
    assert!(message.contains(id), "{message}");
    assert!(h.ecs().log.is_empty());
    assert!(h.ssm().puts.is_empty());
    assert_eq!(h.ssm().gets, [format!("{RUNS_PATH}/{id}")]);
}

/// CloudFormation sends the previous properties with string scalars too; the handler
/// must read them as it reads the new ones, or an override of a criterion key looks
/// changed when it is not.
#[tokio::test]
async fn update_criteria_read_string_typed_previous_properties() {
    let h = Harness::new();
    let props = |timeout: &str| {
        properties(json!({
            "Count": "1", "Timeout": timeout, "UpdateCriteria": criteria(),
            "Overrides": {"ContainerOverrides": [{"Name": "app",
                "Environment": [{"Name": "DB_HOST", "Value": "override.internal"}]}]}
        }))
    };
    let created = h.create_and_succeed("Migrate", props("600")).await;
    let id = id_of(&created);
    let event = h
        .call(with_previous(
            envelope(
                "UPDATE",
                "token-update",
                "Migrate",
                with_id(props("900"), &id),
            ),
            with_id(props("600"), &id),
        ))
        .await;
    assert_eq!(
        event.message.as_deref(),
        Some("not run: no UpdateCriteria environment value changed"),
        "{event:?}"
    );
    assert_eq!(event.status, OperationStatus::Success);
    assert_eq!(h.ecs().runs.len(), 1);
}

// ---------------------------------------------------------------------------------------
// DELETE, READ, LIST

#[tokio::test]
async fn delete_stops_running_tasks_and_removes_the_record() {
    let h = Harness::new();
    let props = properties(json!({"Count": "2"}));
    let started = h
        .call(envelope("CREATE", "token-create", "Migrate", props.clone()))
        .await;
    let model = started.resource_model.unwrap();
    let id = id_of(&model);
    let arns: Vec<String> = h.ecs().tasks.keys().cloned().collect();

    let delete = envelope("DELETE", "token-delete", "Migrate", model.clone());
    let event = h.call(delete.clone()).await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert_eq!(
        event.to_value(),
        json!({"status": "SUCCESS"}),
        "no resourceModel"
    );
    {
        let ecs = h.ecs();
        let stopped: Vec<&str> = ecs.stops.iter().map(|s| s.task().unwrap()).collect();
        assert_eq!(stopped, arns.iter().map(String::as_str).collect::<Vec<_>>());
        for stop in &ecs.stops {
            assert_eq!(stop.cluster(), Some(CLUSTER));
            assert_eq!(
                stop.reason(),
                Some(format!("Org::ECS::TaskRun {id} deleted").as_str())
            );
        }
    }
    assert!(h.record(&id).is_none());
    assert_eq!(h.ssm().deletes, [format!("{RUNS_PATH}/{id}")]);

    // Deleting again: CloudFormation must hear NotFound.
    let event = h.call(delete).await;
    let message = failed_with(&event, HandlerErrorCode::NotFound);
    assert!(message.contains(&id), "{message}");
    assert_eq!(h.ecs().stops.len(), 2, "nothing stopped twice");
}

#[tokio::test]
async fn delete_never_validates_the_properties() {
    let h = Harness::new();
    let model = h
        .create_and_succeed("Migrate", properties(json!({"Count": "1"})))
        .await;
    let id = id_of(&model);
    let event = h
        .call(envelope(
            "DELETE",
            "token-delete",
            "Migrate",
            json!({"Id": id, "Count": "lots", "Bogus": true}),
        ))
        .await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert!(event.resource_model.is_none());
    assert!(h.record(&id).is_none());
    assert!(
        h.ecs().stops.is_empty(),
        "a finished run has nothing to stop"
    );
}

#[tokio::test]
async fn read_answers_from_the_record() {
    let h = Harness::new();
    let model = h
        .create_and_succeed(
            "Migrate",
            properties(json!({"Count": "1", "PollInterval": "5"})),
        )
        .await;
    let id = id_of(&model);
    let gets = h.ssm().gets.len();
    let event = h
        .call(envelope("READ", "token-read", "Migrate", json!({"Id": id})))
        .await;
    assert_eq!(event.status, OperationStatus::Success, "{event:?}");
    assert_eq!(event.resource_model.as_ref(), Some(&model));
    assert_eq!(h.ssm().gets.len(), gets + 1);
    assert_eq!(h.ecs().describe_tasks, 1, "READ never asks ECS");

    let event = h
        .call(envelope(
            "READ",
            "token-read",
            "Migrate",
            json!({"Id": "Migrate-ffffffffffffffff"}),
        ))
        .await;
    let message = failed_with(&event, HandlerErrorCode::NotFound);
    assert!(message.contains("Migrate-ffffffffffffffff"), "{message}");
    let event = h
        .call(envelope("READ", "token-read", "Migrate", json!({})))
        .await;
    failed_with(&event, HandlerErrorCode::NotFound);
    // An id this type cannot have made is never spliced into a parameter name.
    let gets = h.ssm().gets.len();
    let event = h
        .call(envelope(
            "READ",
            "token-read",
            "Migrate",
            json!({"Id": "../../etc"}),
        ))
        .await;
    failed_with(&event, HandlerErrorCode::NotFound);
    assert_eq!(
        h.ssm().gets.len(),
        gets,
        "no GetParameter for an impossible id"
    );
}

#[tokio::test]
async fn list_pages_through_every_record() {
    let h = Harness::new();
    let event = h.call(envelope("LIST", "token-list", "", json!({}))).await;
    assert_eq!(
        event.to_value(),
        json!({"status": "SUCCESS", "resourceModels": []})
    );

    let mut created = BTreeMap::new();
    for i in 0..12 {
        let model = h
            .create_and_succeed(&format!("Seed{i:02}"), properties(json!({"Count": "0"})))
            .await;
        created.insert(id_of(&model), model);
    }
    // A parameter of someone else's below the path is left out, not an error.
    h.ssm().parameters.insert(
        format!("{RUNS_PATH}/garbage"),
        StoredParameter {
            value: "not json".into(),
            kind: Some(ParameterType::SecureString),
            tier: None,
        },
    );

    let first = h.call(envelope("LIST", "token-list", "", json!({}))).await;
    assert_eq!(first.status, OperationStatus::Success, "{first:?}");
    let page_1 = first.resource_models.clone().unwrap();
    assert_eq!(page_1.len(), 10);
    let token = first.next_token.clone().expect("a nextToken");
    let mut second = envelope("LIST", "token-list", "", json!({}));
    second["nextToken"] = json!(token);
    let second = h.call(second).await;
    assert_eq!(second.status, OperationStatus::Success, "{second:?}");
    assert!(second.next_token.is_none());
    let page_2 = second.resource_models.clone().unwrap();
    assert_eq!(page_2.len(), 2, "12 records and one unreadable parameter");

    let listed: BTreeMap<String, Value> = page_1
        .into_iter()
        .chain(page_2)
        .map(|m| (id_of(&m), m))
        .collect();
    assert_eq!(listed, created);
    assert_eq!(h.ssm().lists, 3);
}

// ---------------------------------------------------------------------------------------
// Events that are no handler request at all.

#[tokio::test]
async fn garbage_events_are_invalid_requests() {
    // `handle` builds real clients from the environment for a good envelope; these
    // envelopes never get that far, but nothing may reach out to AWS should they.
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_REGION", "us-east-1");
    std::env::set_var("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "secret");
    let cases = [
        (json!([1, 2]), "not a JSON object"),
        (json!("CREATE"), "not a JSON object"),
        (json!(null), "not a JSON object"),
        (json!({}), "no action"),
        (json!({"action": "EXPLODE"}), "unknown action \"EXPLODE\""),
        (
            json!({"action": "CREATE", "requestData": "nope"}),
            "malformed",
        ),
    ];
    for (event, fragment) in cases {
        let answer = tokio::time::timeout(Duration::from_secs(5), taskrun::handle(event.clone()))
            .await
            .expect("answered without any AWS call");
        assert_no_nulls(&answer, "$");
        assert_eq!(answer["status"], "FAILED", "{event}: {answer}");
        assert_eq!(answer["errorCode"], "InvalidRequest", "{event}: {answer}");
        let message = answer["message"].as_str().unwrap();
        assert!(message.contains(fragment), "{event}: {message}");
        assert_eq!(keys(&answer), ["errorCode", "message", "status"], "{event}");
    }
}

#[test]
fn the_fake_classifies_like_the_service() {
    // The handler's store reads `code()`: the fake's errors must carry it.
    let error = GetParameterError::ParameterNotFound(parameter_not_found("/x"));
    assert_eq!(error.code(), Some("ParameterNotFound"));
    let error = DeleteParameterError::ParameterNotFound(parameter_not_found("/x"));
    assert_eq!(error.code(), Some("ParameterNotFound"));
    assert_eq!(parse_task_definition("migrate", 4), ("migrate".into(), 4));
    assert_eq!(
        parse_task_definition(&format!("{TASK_DEFINITION_ARN_PREFIX}migrate:2"), 4),
        ("migrate".into(), 2)
    );
}
