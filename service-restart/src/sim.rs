//! An in-memory ECS of services and deployments on a virtual clock, for the property
//! tests: the real handlers run over it as over AWS, with faults, slow answers and the
//! process dying after any call under the test's control. It keeps the ground truth:
//! every deployment UpdateService started, and how each ends.
//!
//! Off unless a test turns them on: ECS's request throttling
//! ([`SimGateway::throttle_with`](handler_kit::sim::SimGateway::throttle_with): the
//! account's service buckets, a background consumer, random throttling, the SDK's
//! retries; see `handler_kit::clock::throttle`), and a scheduled clock
//! (`VirtualClock::scheduled`) on which many operations run at once, every call taking its
//! latency in virtual time.

use std::collections::{BTreeMap, BTreeSet};

use handler_kit::clock::throttle;
use handler_kit::sim::{FaultPlan, TwinState};

use crate::services::{
    Deployment, Fault, FaultKind, LifecycleHook, ServiceDeploymentState, ServiceEvent,
    ServiceState, Services, CODE_DEPLOY, EXTERNAL,
};

const REGION_ACCOUNT: &str = "us-east-1:123456789012";

/// A service's deployment controller (DescribeServices `deploymentController.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Controller {
    /// Rolling update (and ECS's own blue/green strategies).
    #[default]
    Ecs,
    /// Blue/green with CodeDeploy.
    CodeDeploy,
    /// A third-party controller, through task sets.
    External,
}

impl Controller {
    pub fn name(self) -> &'static str {
        match self {
            Self::Ecs => "ECS",
            Self::CodeDeploy => CODE_DEPLOY,
            Self::External => EXTERNAL,
        }
    }
}

/// What kind of service the simulation keeps: each behaviour is one ECS documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceSetup {
    /// ECS API Reference, "UpdateService": for CODE_DEPLOY "only the desired count,
    /// deployment configuration, health check grace period, task placement constraints
    /// and strategies, enable ECS managed tags option, and propagate tags can be updated";
    /// for EXTERNAL a similar list. `forceNewDeployment` is in neither: the simulation
    /// refuses it with InvalidParameterException (**unverified**: the reference does not
    /// say what ECS answers; boto/boto3#1936 shows that refusal when a task definition
    /// is sent along).
    pub controller: Controller,
    /// Behind a Classic Load Balancer. ECS API Reference, "Deployment": "The rolloutState
    /// of a service is only returned for services that use the rolling update (ECS)
    /// deployment type that aren't behind a Classic Load Balancer."
    pub classic_load_balancer: bool,
    /// Created before 2021. ECS Developer Guide, "Migrate an Amazon ECS short service
    /// ARN to a long ARN": such services "have a short ARN format
    /// arn:aws:ecs:region:aws_account_id:service/service-name".
    pub short_arn: bool,
    /// `deploymentConfiguration.lifecycleHooks` set: a deployment may wait at a hook (ECS
    /// Developer Guide, "Lifecycle hooks for Amazon ECS service deployments").
    pub lifecycle_hooks: bool,
    /// Seconds during which DescribeServices does not show yet a deployment UpdateService
    /// started. ECS API Reference (RunTask): "The Amazon ECS API follows an eventual
    /// consistency model ... the result of an API command you run that affects your
    /// Amazon ECS resources might not be immediately visible to all subsequent commands
    /// you run." How long DescribeServices lags after UpdateService is **unverified**.
    pub describe_lag: f64,
}

/// A deployment waiting at a lifecycle hook before it goes on. ECS Developer Guide,
/// "Pause hooks for Amazon ECS service deployments": "The deployment remains paused until
/// you call ContinueServiceDeployment with the hookId and an action of CONTINUE or
/// ROLLBACK, or until the configured timeout is reached"; "Lambda hooks": a function that
/// answers `hookStatus` IN_PROGRESS is run again ("By default this is a 30 second
/// interval").
#[derive(Debug, Clone, PartialEq)]
pub struct HookScript {
    /// A PAUSE hook (AWAITING_ACTION), else an AWS_LAMBDA one (IN_PROGRESS).
    pub pause: bool,
    /// The lifecycle stage it waits at.
    pub stage: String,
    /// Seconds until someone (or the function) lets it go on; `None`: nobody does.
    pub holds_for: Option<f64>,
}

/// How a deployment started in the simulation goes.
#[derive(Debug, Clone, PartialEq)]
pub struct DeploymentScript {
    /// Seconds until it ends by itself (`None`: it never does), counted from when it
    /// leaves its hook.
    pub ends_after: Option<f64>,
    /// It fails (the circuit breaker rolls it back) instead of completing.
    pub fails: bool,
    /// Seconds after COMPLETED until all its tasks run.
    pub steady_after: f64,
    /// It first waits at a lifecycle hook (only on a service that has hooks).
    pub hook: Option<HookScript>,
}

impl Default for DeploymentScript {
    fn default() -> Self {
        Self {
            ends_after: Some(30.0),
            fails: false,
            steady_after: 0.0,
            hook: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SimDeployment {
    pub id: String,
    pub created_at: f64,
    pub script: DeploymentScript,
    /// Started by UpdateService (not there from the start).
    pub by_update: bool,
}

#[derive(Debug, Clone, Default)]
pub struct SimService {
    pub setup: ServiceSetup,
    /// Oldest first.
    pub deployments: Vec<SimDeployment>,
}

#[derive(Debug, Default)]
pub struct SimState {
    /// (cluster, service name) -> the service.
    pub services: BTreeMap<(String, String), SimService>,
    pub scripts: Vec<DeploymentScript>,
    /// Faults by call number, the calls made, whether an injected crash fired, and ECS's
    /// request throttling for this account (off by default).
    pub plan: FaultPlan,
    /// UpdateService calls that reached a CODE_DEPLOY or EXTERNAL service.
    pub updates_of_foreign_controllers: u64,
    /// DescribeServices answers that did not show yet a deployment UpdateService started.
    pub lagged_answers: u64,
    /// DescribeServices answers without `rolloutState`.
    pub answers_without_rollout_state: u64,
    /// Deployments a DescribeServiceDeployments answer showed waiting at a hook.
    pub hook_waits_shown: BTreeSet<String>,
    next_id: u64,
}

impl TwinState for SimState {
    fn plan(&mut self) -> &mut FaultPlan {
        &mut self.plan
    }
}

impl SimDeployment {
    /// When it leaves its hook and starts rolling out (`None`: never).
    fn rolls_from(&self) -> Option<f64> {
        match &self.script.hook {
            None => Some(self.created_at),
            Some(hook) => hook.holds_for.map(|h| self.created_at + h),
        }
    }

    /// Waiting at its hook at `now`.
    pub fn held_at(&self, now: f64) -> bool {
        self.script.hook.is_some() && self.rolls_from().is_none_or(|from| now < from)
    }

    /// When it completed with every task running, by the script (`None`: it never does).
    pub fn steady_at(&self) -> Option<f64> {
        if self.script.fails {
            return None;
        }
        Some(self.rolls_from()? + self.script.ends_after? + self.script.steady_after)
    }

    fn state(&self, now: f64, desired: i32) -> (String, i32) {
        let ends = self
            .rolls_from()
            .zip(self.script.ends_after)
            .map(|(from, after)| from + after);
        match ends {
            Some(at) if now >= at => {
                if self.script.fails {
                    ("FAILED".into(), 0)
                } else if now >= at + self.script.steady_after {
                    ("COMPLETED".into(), desired)
                } else {
                    ("COMPLETED".into(), desired - 1)
                }
            }
            _ => ("IN_PROGRESS".into(), 0),
        }
    }

    /// The ARN of its service deployment (the id after `ecs-svc/`).
    fn service_deployment_arn(&self, cluster: &str, service: &str) -> String {
        let id = self.id.trim_start_matches("ecs-svc/");
        format!("arn:aws:ecs:{REGION_ACCOUNT}:service-deployment/{cluster}/{service}/{id}")
    }
}

handler_kit::sim_gateway! {
    /// The in-memory ECS of services. Cheap to clone: clones share one state.
    pub struct SimServices(SimState), throttled by throttle::ECS_SERVICE_RULES
}

const DESIRED: i32 = 2;

/// The service a DescribeServices or UpdateService names in `cluster`: by name, or by
/// ARN (long `.../service/<cluster>/<name>`, whose cluster must be `cluster`; or short
/// `.../service/<name>`). ECS resolving an ARN whose cluster is not the one asked is
/// **unverified**; the simulation finds nothing.
fn resolve(cluster: &str, service: &str) -> Option<(String, String)> {
    let name = match service
        .strip_prefix("arn:")
        .and_then(|arn| arn.split_once(":service/"))
    {
        Some((_, path)) => match path.split_once('/') {
            Some((in_cluster, name)) if in_cluster == cluster => name,
            Some(_) => return None,
            None => path,
        },
        None => service,
    };
    Some((cluster.to_string(), name.to_string()))
}

impl SimServices {
    /// A rolling-update service with one completed deployment.
    pub fn with_service(self, cluster: &str, service: &str) -> Self {
        self.with_service_setup(cluster, service, ServiceSetup::default())
    }

    /// A service of the given kind with one completed deployment.
    pub fn with_service_setup(self, cluster: &str, service: &str, setup: ServiceSetup) -> Self {
        {
            let mut state = self.lock();
            state.next_id += 1;
            let first = SimDeployment {
                id: format!("ecs-svc/{:019}", state.next_id),
                created_at: 0.0,
                script: DeploymentScript {
                    ends_after: Some(0.0),
                    ..DeploymentScript::default()
                },
                by_update: false,
            };
            state.services.insert(
                (cluster.to_string(), service.to_string()),
                SimService {
                    setup,
                    deployments: vec![first],
                },
            );
        }
        self
    }

    /// The service's ARN: short for a service from before 2021.
    pub fn arn(cluster: &str, service: &str, setup: &ServiceSetup) -> String {
        if setup.short_arn {
            format!("arn:aws:ecs:{REGION_ACCOUNT}:service/{service}")
        } else {
            format!("arn:aws:ecs:{REGION_ACCOUNT}:service/{cluster}/{service}")
        }
    }

    /// The service as DescribeServices shows it at `now`, to a caller that sees every
    /// deployment (`lagging`: as eventual consistency shows it, without the deployments
    /// UpdateService started less than `describe_lag` seconds ago). The newest deployment
    /// that did not fail is PRIMARY (a failed one is rolled back and listed ACTIVE); the
    /// ones before it stay listed ACTIVE until it runs its desired count (ECS Developer
    /// Guide, "Deployment": an ACTIVE deployment "still has running tasks, but are in the
    /// process of being replaced with a new PRIMARY deployment"; INACTIVE ones are not
    /// kept).
    pub fn shown(
        state: &SimState,
        key: &(String, String),
        now: f64,
        lagging: bool,
    ) -> Option<ServiceState> {
        let service = state.services.get(key)?;
        let setup = &service.setup;
        let (cluster, name) = key;
        let visible = |d: &&SimDeployment| {
            !(lagging && d.by_update && now < d.created_at + setup.describe_lag)
        };
        let shown: Vec<(&SimDeployment, String, i32)> = service
            .deployments
            .iter()
            .filter(visible)
            .map(|d| {
                let (rollout, running) = d.state(now, DESIRED);
                (d, rollout, running)
            })
            .collect();
        let primary = shown
            .iter()
            .rposition(|(_, rollout, _)| rollout != "FAILED");
        let primary_steady = primary.is_some_and(|p| {
            let (_, rollout, running) = &shown[p];
            rollout == "COMPLETED" && *running == DESIRED
        });
        let listed: Vec<&(&SimDeployment, String, i32)> = shown
            .iter()
            .enumerate()
            .filter(|(i, (_, rollout, _))| match primary {
                Some(p) => *i >= p || (!primary_steady && rollout != "FAILED"),
                None => true,
            })
            .map(|(_, d)| d)
            .collect();
        // The last ones only.
        let listed = &listed[listed.len().saturating_sub(3)..];
        // Deployment: rolloutState "is only returned for services that use the rolling
        // update (ECS) deployment type that aren't behind a Classic Load Balancer".
        let rollout_shown = setup.controller == Controller::Ecs && !setup.classic_load_balancer;
        let primary_id = primary.map(|p| shown[p].0.id.clone());
        Some(ServiceState {
            arn: Self::arn(cluster, name, setup),
            deployments: listed
                .iter()
                .map(|(d, rollout, running)| Deployment {
                    id: d.id.clone(),
                    status: if Some(&d.id) == primary_id.as_ref() {
                        "PRIMARY"
                    } else {
                        "ACTIVE"
                    }
                    .into(),
                    rollout_state: rollout_shown.then(|| rollout.clone()),
                    rollout_reason: (rollout_shown && rollout == "FAILED").then(|| {
                        "ECS deployment circuit breaker: tasks failed to start.".to_string()
                    }),
                    desired: DESIRED,
                    running: *running,
                    pending: DESIRED - running,
                    failed_tasks: if rollout == "FAILED" { 3 } else { 0 },
                    created_at: Some(d.created_at),
                })
                .collect(),
            events: vec![ServiceEvent {
                at: now,
                message: format!("(service {name}) simulated event"),
            }],
            controller: Some(setup.controller.name().to_string()),
            classic_load_balancers: if setup.classic_load_balancer {
                vec![format!("{name}-clb")]
            } else {
                Vec::new()
            },
            lifecycle_hooks: setup.lifecycle_hooks,
            current_service_deployment: primary
                .map(|p| shown[p].0.service_deployment_arn(cluster, name)),
        })
    }

    /// DescribeServices as a caller sees it (eventual consistency included), counting
    /// what it showed of each behaviour.
    fn describe(
        state: &mut SimState,
        cluster: &str,
        service: &str,
        now: f64,
    ) -> Option<ServiceState> {
        let key = resolve(cluster, service)?;
        let shown = Self::shown(state, &key, now, true)?;
        let all = Self::shown(state, &key, now, false)?;
        if shown.deployments.len() != all.deployments.len() || shown.primary() != all.primary() {
            state.lagged_answers += 1;
        }
        if shown.deployments.iter().any(|d| d.rollout_state.is_none()) {
            state.answers_without_rollout_state += 1;
        }
        Some(shown)
    }

    /// DescribeServiceDeployments of one service deployment: its lifecycle stage, and the
    /// hook it waits at (ECS Developer Guide, "Lifecycle hooks for Amazon ECS service
    /// deployments": "When a hook is active during a deployment, its status is visible by
    /// calling DescribeServiceDeployments. The response contains a lifecycleHookDetails
    /// array"; a PAUSE hook is AWAITING_ACTION, a Lambda one IN_PROGRESS).
    fn service_deployment(
        state: &mut SimState,
        arn: &str,
        now: f64,
    ) -> Option<ServiceDeploymentState> {
        let (key, d) = state.services.iter().find_map(|(key, s)| {
            s.deployments
                .iter()
                .find(|d| d.service_deployment_arn(&key.0, &key.1) == arn)
                .map(|d| (key.clone(), d.clone()))
        })?;
        let (rollout, running) = d.state(now, DESIRED);
        let held = d.held_at(now);
        let hooks = match (&d.script.hook, held) {
            (Some(hook), true) => vec![LifecycleHook {
                id: format!(
                    "ecs-{}-{}",
                    if hook.pause { "pause" } else { "lambda" },
                    d.id.trim_start_matches("ecs-svc/")
                ),
                target_type: if hook.pause { "PAUSE" } else { "AWS_LAMBDA" }.into(),
                target_arn: (!hook.pause)
                    .then(|| format!("arn:aws:lambda:{REGION_ACCOUNT}:function:{}-hook", key.1)),
                status: if hook.pause {
                    "AWAITING_ACTION"
                } else {
                    "IN_PROGRESS"
                }
                .into(),
                expires_at: Some(d.created_at + hook.holds_for.unwrap_or(86_400.0)),
                timeout_action: Some("ROLLBACK".into()),
            }],
            _ => Vec::new(),
        };
        if held {
            state.hook_waits_shown.insert(d.id.clone());
        }
        let (status, stage) = match (held, rollout.as_str()) {
            (true, _) => (
                "IN_PROGRESS",
                d.script.hook.as_ref().map(|h| h.stage.clone()),
            ),
            (false, "FAILED") => ("ROLLBACK_SUCCESSFUL", None),
            (false, "COMPLETED") if running == DESIRED => ("SUCCESSFUL", Some("CLEAN_UP".into())),
            _ => ("IN_PROGRESS", Some("SCALE_UP".into())),
        };
        Some(ServiceDeploymentState {
            arn: arn.to_string(),
            status: status.into(),
            lifecycle_stage: stage,
            hooks,
        })
    }

    /// Deployments UpdateService started.
    pub fn started(&self) -> usize {
        self.lock()
            .services
            .values()
            .flat_map(|s| &s.deployments)
            .filter(|d| d.by_update)
            .count()
    }

    /// A deployment by id, with the service it belongs to.
    pub fn deployment(&self, id: &str) -> Option<((String, String), SimService, SimDeployment)> {
        let state = self.lock();
        state.services.iter().find_map(|(key, s)| {
            s.deployments
                .iter()
                .find(|d| d.id == id)
                .map(|d| (key.clone(), s.clone(), d.clone()))
        })
    }
}

impl Services for SimServices {
    async fn describe_service(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<Option<ServiceState>, Fault> {
        self.0
            .call("ecs:DescribeServices", &[], by, |state, now| {
                Ok(Self::describe(state, cluster, service, now))
            })
            .await
    }

    async fn force_new_deployment(
        &self,
        cluster: &str,
        service: &str,
        by: f64,
    ) -> Result<ServiceState, Fault> {
        const OP: &str = "ecs:UpdateService";
        self.0.call(OP, &[], by, |state, now| {
            let Some(key) = resolve(cluster, service).filter(|k| state.services.contains_key(k))
            else {
                return Err(Fault::new(
                    OP,
                    FaultKind::BadRequest,
                    "ServiceNotFoundException: Service not found.",
                ));
            };
            let controller = state
                .services
                .get(&key)
                .map(|s| s.setup.controller)
                .unwrap_or_default();
            if controller != Controller::Ecs {
                state.updates_of_foreign_controllers += 1;
                // The refusal is **unverified** (see ServiceSetup::controller).
                return Err(Fault::new(
                    OP,
                    FaultKind::BadRequest,
                    format!(
                        "InvalidParameterException: Unable to update task definition on services with a {} deployment controller.",
                        controller.name()
                    ),
                ));
            }
            state.next_id += 1;
            let mut script = if state.scripts.is_empty() {
                DeploymentScript::default()
            } else {
                state.scripts.remove(0)
            };
            let Some(sim) = state.services.get_mut(&key) else {
                return Err(Fault::new(OP, FaultKind::Other, "gone"));
            };
            if !sim.setup.lifecycle_hooks {
                script.hook = None;
            }
            let id = format!("ecs-svc/{:019}", state.next_id);
            sim.deployments.push(SimDeployment {
                id,
                created_at: now,
                script,
                by_update: true,
            });
            // UpdateService answers with the service as it now is, its new deployment in.
            Self::shown(state, &key, now, false)
                .ok_or_else(|| Fault::new(OP, FaultKind::Other, "gone"))
        })
        .await
    }

    async fn describe_service_deployment(
        &self,
        arn: &str,
        by: f64,
    ) -> Result<Option<ServiceDeploymentState>, Fault> {
        self.0
            .call("ecs:DescribeServiceDeployments", &[], by, |state, now| {
                Ok(Self::service_deployment(state, arn, now))
            })
            .await
    }
}

/// The backend of the simulation: one shared ECS, store and clock.
pub type SimBackend = handler_kit::sim::SimBackend<SimServices>;
