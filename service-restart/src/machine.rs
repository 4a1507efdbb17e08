//! A restart's state machine: the one place where a restart changes state.
//!
//! ```text
//!   Starting ── look at the service (its PRIMARY deployment before ours) ──┐
//!      │── CODE_DEPLOY / EXTERNAL controller ──▶ Ended(Rejected)           │
//!      │                                                                   │
//!      │  UpdateService forceNewDeployment (recorded as sent first; an     │
//!      │  answer that was lost is looked up for LOOKUP_WINDOW_SECONDS,     │
//!      │  never sent again blindly)                                        │
//!      ▼                                                                   │
//!   Following ── the deployment COMPLETED (and, for STEADY_STATE, running ─┤
//!      │          = desired); without rolloutState: the only deployment,   │
//!      │          PRIMARY, running = desired ──▶ Ended(Succeeded)          │
//!      │── FAILED (circuit breaker) / replaced / gone ──▶ Ended(Failed)    │
//!      │── waits at a lifecycle hook: reported (DescribeServiceDeployments)│
//!      │── Timeout ──▶ Ended(TimedOut): nothing to stop, ECS goes on       │
//!      └── another operation takes over ──▶ Ended(Superseded) ◀───────────┘
//! ```
//!
//! A deployment waiting at a lifecycle hook is waited for like any other, up to the
//! Timeout; it is not failed early. A PAUSE hook is there for a person (or a pipeline) to
//! approve the deployment (ECS Developer Guide, "Pause hooks for Amazon ECS service
//! deployments": it "wait[s] for you to call ContinueServiceDeployment"), a Lambda hook
//! answering IN_PROGRESS is run again by ECS: both may well go on before the Timeout, and
//! failing the deploy first would roll the stack back under a deployment that then goes on
//! anyway. What the restart does instead is say it: the stage and the hook in the
//! IN_PROGRESS message and the provider log, and in the TIMED_OUT reason what to do.
//!
//! [`step`] takes the restart, what just happened and the time, and returns the restart
//! as it is now and what to do next. No I/O: the shared driver (`handler_kit::driver`)
//! writes every change to the record before acting on it.

use handler_kit::pace;
use serde::{Deserialize, Serialize};

use crate::services::{
    Deployment, Fault, FaultKind, ServiceDeploymentState, ServiceState, CODE_DEPLOY,
};

/// How long after an UpdateService whose answer was lost to look for the deployment it
/// may have started (DescribeServices is eventually consistent).
pub const LOOKUP_DELAY_SECONDS: f64 = 5.0;
/// How long a deployment UpdateService may have started is looked for (the waits between
/// two looks doubling) before UpdateService is sent again; and how long the deployment
/// being followed may be missing from DescribeServices before it counts as gone. ECS
/// documents eventual consistency without a bound (API Reference, RunTask: "The Amazon
/// ECS API follows an eventual consistency model ... run the DescribeTasks command
/// repeatedly, starting with a couple of seconds of wait time and increasing gradually up
/// to five minutes of wait time"): five minutes, its advice, at the price of a restart
/// started that much later when the lost UpdateService had not acted.
pub const LOOKUP_WINDOW_SECONDS: f64 = 300.0;
/// Pause after a passing fault.
pub const RETRY_DELAY_SECONDS: f64 = 2.0;
/// Service events quoted in a failure.
pub const EVENTS_QUOTED: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WaitFor {
    /// The new deployment's rollout COMPLETED and its running count reached the desired.
    SteadyState,
    /// The new deployment exists.
    Started,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Phase {
    Starting,
    Following,
    Ended,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "camelCase")]
pub enum Ending {
    Succeeded,
    /// The deployment failed (the circuit breaker rolled it back), or went away.
    Failed,
    TimedOut,
    /// ECS refused to show or to restart the service.
    Rejected {
        fault: FaultKind,
    },
    /// Another operation took over before the restart ended.
    Superseded,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Restart {
    /// The request token of the operation that started it.
    pub token: String,
    #[serde(default)]
    pub revision: u32,
    pub cluster: String,
    pub service: String,
    pub wait_for: WaitFor,
    pub started_at: f64,
    pub deadline: f64,
    pub timeout: u32,
    pub poll_interval: u32,
    pub phase: Phase,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ending: Option<Ending>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<f64>,
    /// Whether the service was looked at before the restart (to learn `previous`).
    #[serde(default)]
    pub looked: bool,
    /// The deployments the service had before the restart: one it has and they do not
    /// is the restart's (whatever its state: it may have failed and rolled back already).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known: Vec<String>,
    /// When UpdateService was sent, while its answer is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<f64>,
    /// The deployment the restart started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<String>,
    /// What the restart's inputs were, for the next update to compare with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<crate::policy::Fingerprint>,
    /// When the restart began to follow its deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub followed_at: Option<f64>,
    /// The lifecycle hook the deployment waits at, as last seen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<HookWait>,
    /// DescribeServiceDeployments was refused: the hooks are not looked at again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hooks_unreadable: bool,
    /// The Timeout came: the reason so far, to end with once the hooks have been looked
    /// at one last time (the reason then says where the deployment waits at the end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closing: Option<String>,
    /// Calls throttled in a row: the next pause backs off.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub throttled: u8,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// A deployment waiting at a lifecycle hook (ECS Developer Guide, "Lifecycle hooks for
/// Amazon ECS service deployments": DescribeServiceDeployments shows each active hook in
/// `lifecycleHookDetails`, a PAUSE hook as AWAITING_ACTION until ContinueServiceDeployment,
/// a Lambda hook as IN_PROGRESS while its function has not answered SUCCEEDED or FAILED).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookWait {
    pub service_deployment: String,
    pub stage: String,
    pub hook_id: String,
    /// PAUSE or AWS_LAMBDA.
    pub kind: String,
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_action: Option<String>,
}

impl HookWait {
    /// The hook the service deployment waits at, if any: a PAUSE hook AWAITING_ACTION, or
    /// any hook IN_PROGRESS.
    pub fn of(deployment: &ServiceDeploymentState) -> Option<Self> {
        let hook = deployment
            .hooks
            .iter()
            .find(|h| h.status == "AWAITING_ACTION" || h.status == "IN_PROGRESS")?;
        Some(Self {
            service_deployment: deployment.arn.clone(),
            stage: deployment
                .lifecycle_stage
                .clone()
                .unwrap_or_else(|| "(stage not shown)".into()),
            hook_id: hook.id.clone(),
            kind: hook.target_type.clone(),
            status: hook.status.clone(),
            target: hook.target_arn.clone(),
            expires_at: hook.expires_at,
            timeout_action: hook.timeout_action.clone(),
        })
    }

    /// Where the deployment waits, and what a person can do about it.
    pub fn describe(&self) -> String {
        let until = match (self.expires_at, &self.timeout_action) {
            (Some(at), Some(action)) => format!(
                ", until {} when ECS takes its timeout action {action}",
                handler_kit::clock::iso8601(at)
            ),
            (Some(at), None) => format!(", until {}", handler_kit::clock::iso8601(at)),
            _ => String::new(),
        };
        let head = format!(
            "the deployment waits at lifecycle stage {} on {} hook {} ({}{until})",
            self.stage, self.kind, self.hook_id, self.status
        );
        match self.kind.as_str() {
            // ECS Developer Guide, "Continuing service deployments".
            "PAUSE" => format!(
                "{head}: to go on, run `aws ecs continue-service-deployment --service-deployment-arn {} --hook-id {} --action CONTINUE` (or --action ROLLBACK), or choose Take action on the service's Deployments tab in the ECS console",
                self.service_deployment, self.hook_id
            ),
            // ECS Developer Guide, "Lambda hooks": IN_PROGRESS makes ECS run it again.
            "AWS_LAMBDA" => format!(
                "{head}: its Lambda function {} has not answered hookStatus SUCCEEDED yet (ECS runs it again while it answers IN_PROGRESS): see the function's logs",
                self.target.as_deref().unwrap_or("(not shown)")
            ),
            _ => format!(
                "{head}: see the service deployment {} (aws ecs describe-service-deployments)",
                self.service_deployment
            ),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Resumed,
    /// DescribeServices: the service, or `None` when ECS has no active one by that name.
    Looked(Result<Option<ServiceState>, Fault>),
    /// UpdateService with forceNewDeployment.
    Updated(Result<ServiceState, Fault>),
    /// DescribeServiceDeployments of the service's current deployment (`None`: unknown).
    Inspected(Result<Option<ServiceDeploymentState>, Fault>),
    /// Another operation takes over.
    Abandon {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Look,
    Update,
    /// Look at this service deployment's lifecycle stage and hooks.
    Inspect(String),
    Wait(f64),
    Done,
}

impl Restart {
    pub fn new(
        token: String,
        cluster: String,
        service: String,
        wait_for: WaitFor,
        now: f64,
        timeout: u32,
        poll_interval: u32,
    ) -> Self {
        Self {
            token,
            revision: 0,
            cluster,
            service,
            wait_for,
            started_at: now,
            deadline: now + f64::from(timeout),
            timeout,
            poll_interval: poll_interval.max(1),
            phase: Phase::Starting,
            ending: None,
            reason: None,
            finished_at: None,
            looked: false,
            known: Vec::new(),
            sent_at: None,
            deployment: None,
            fingerprint: None,
            followed_at: None,
            waiting: None,
            hooks_unreadable: false,
            closing: None,
            throttled: 0,
        }
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// A tenth of the time the restart has been going, at least 1 s, at most PollInterval,
    /// jittered by ±25 % so that restarts started together do not look in the same second.
    pub fn poll_delay(&self, now: f64) -> f64 {
        let base = ((now - self.started_at) / 10.0).clamp(1.0, f64::from(self.poll_interval));
        pace::spread(base, pace::jitter(&self.token, now, self.throttled))
    }

    /// Counts a throttled call or an answered one, and says how long to pause: a backoff
    /// with full jitter when throttled (DescribeServices and UpdateService buckets are the
    /// account's: 20 and 5 a second, shared with every caller), else `otherwise`.
    fn pause_after(&mut self, throttled: bool, otherwise: f64, now: f64) -> f64 {
        if throttled {
            self.throttled = self.throttled.saturating_add(1);
            pace::backoff(
                self.throttled,
                pace::jitter(&self.token, now, self.throttled),
            )
        } else {
            self.throttled = 0;
            otherwise
        }
    }

    fn end(&mut self, ending: Ending, reason: Option<String>, now: f64) -> Next {
        self.phase = Phase::Ended;
        self.ending = Some(ending);
        self.reason = reason;
        self.finished_at = Some(now);
        self.sent_at = None;
        self.closing = None;
        Next::Done
    }

    /// Takes `deployment` as the restart's: it is followed from now on.
    fn follow(&mut self, deployment: String, now: f64) -> Next {
        self.deployment = Some(deployment);
        self.sent_at = None;
        self.followed_at = Some(now);
        self.phase = Phase::Following;
        if self.wait_for == WaitFor::Started {
            return self.end(Ending::Succeeded, None, now);
        }
        Next::Wait(self.poll_delay(now))
    }

    fn timed_out_starting(&mut self, now: f64) -> Next {
        let reason = match self.sent_at {
            // The answer of an UpdateService was lost, and no new deployment was seen.
            Some(_) => format!(
                "timed out after {} s before a deployment of service {} could be seen (an UpdateService whose answer was lost may have started one, which then goes on as ECS runs it)",
                self.timeout, self.service
            ),
            None => format!(
                "timed out after {} s before service {} could be restarted (nothing was started)",
                self.timeout, self.service
            ),
        };
        self.end(Ending::TimedOut, Some(reason), now)
    }
}

/// Why UpdateService cannot restart a service of this controller, and what can.
fn foreign_controller(restart: &Restart, controller: &str) -> String {
    let how = if controller == CODE_DEPLOY {
        "its deployments are CodeDeploy's (blue/green): start one with CodeDeploy (aws deploy create-deployment for the service's application and deployment group), or move the service to the ECS deployment controller, whose rolling and blue/green deployments ServiceRestart can start"
    } else {
        "its deployments are task sets its external controller creates (CreateTaskSet, then UpdateServicePrimaryTaskSet): restart it with that deployment tool, or move the service to the ECS deployment controller"
    };
    format!(
        "service {} uses the {controller} deployment controller, for which UpdateService cannot force a new deployment (ECS API Reference, UpdateService: forceNewDeployment is not among what it may update for {controller}); {how}. Nothing was changed",
        restart.service
    )
}

pub fn step(restart: &Restart, event: Event, now: f64) -> (Restart, Next) {
    let mut restart = restart.clone();
    let next = match (restart.phase, event) {
        (Phase::Ended, _) => Next::Done,
        (_, Event::Abandon { reason }) => {
            // Nothing to stop: the service's own deployment goes on, with ECS.
            let reason = match &restart.deployment {
                Some(d) => format!("{reason}; deployment {d} goes on as ECS runs it"),
                None => reason,
            };
            restart.end(Ending::Superseded, Some(reason), now)
        }
        (Phase::Starting, event) => starting(&mut restart, event, now),
        (Phase::Following, event) => following(&mut restart, event, now),
    };
    (restart, next)
}

fn starting(restart: &mut Restart, event: Event, now: f64) -> Next {
    match event {
        Event::Looked(Ok(None)) => {
            let reason = format!(
                "service {} is not an active service of cluster {}",
                restart.service, restart.cluster
            );
            restart.end(
                Ending::Rejected {
                    fault: FaultKind::BadRequest,
                },
                Some(reason),
                now,
            )
        }
        Event::Looked(Ok(Some(service))) => {
            if !restart.looked {
                restart.looked = true;
                // Added to what the restart knew already (the previous restart's
                // deployment, which DescribeServices may not show yet).
                for d in &service.deployments {
                    if !restart.known.contains(&d.id) {
                        restart.known.push(d.id.clone());
                    }
                }
                let keep = restart.known.len().saturating_sub(KNOWN_KEPT);
                restart.known.drain(..keep);
            } else if let Some(sent) = restart.sent_at {
                // UpdateService was sent and its answer lost: a deployment the service
                // did not have before is the one it started. DescribeServices may not
                // show it yet: it is looked for again, waiting longer each time, before
                // UpdateService may go again.
                match new_deployment(restart, &service) {
                    Some(id) => return restart.follow(id, now),
                    None if now - sent < LOOKUP_WINDOW_SECONDS => {
                        if now >= restart.deadline {
                            return restart.timed_out_starting(now);
                        }
                        let window_left = LOOKUP_WINDOW_SECONDS - (now - sent);
                        return Next::Wait((now - sent).clamp(LOOKUP_DELAY_SECONDS, window_left));
                    }
                    None => restart.sent_at = None,
                }
            }
            if let Some(controller) = service.foreign_controller() {
                let reason = foreign_controller(restart, controller);
                return restart.end(
                    Ending::Rejected {
                        fault: FaultKind::BadRequest,
                    },
                    Some(reason),
                    now,
                );
            }
            send(restart, now)
        }
        // A look that failed changes nothing: look again later (the restart may have
        // been sent; only a look can tell).
        Event::Looked(Err(fault)) if fault.is_transient() => {
            let throttled = fault.kind == FaultKind::Throttled;
            let delay = restart.pause_after(throttled, RETRY_DELAY_SECONDS, now);
            if now >= restart.deadline + throttled_grace(throttled) {
                return restart.timed_out_starting(now);
            }
            Next::Wait(delay)
        }
        Event::Updated(Err(fault)) if fault.is_transient() => {
            let throttled = fault.kind == FaultKind::Throttled;
            if now >= restart.deadline + throttled_grace(throttled) {
                return restart.timed_out_starting(now);
            }
            // An UpdateService that may have acted is looked up, not repeated; one that
            // certainly did not (throttled) may go again, once the backoff passed.
            if fault.may_have_acted {
                return Next::Wait(LOOKUP_DELAY_SECONDS);
            }
            restart.sent_at = None;
            let delay = restart.pause_after(throttled, RETRY_DELAY_SECONDS, now);
            Next::Wait(delay)
        }
        Event::Looked(Err(fault)) | Event::Updated(Err(fault)) => {
            let reason = format!(
                "service {} could not be restarted: {fault}",
                restart.service
            );
            restart.end(Ending::Rejected { fault: fault.kind }, Some(reason), now)
        }
        Event::Updated(Ok(service)) => match new_deployment(restart, &service) {
            Some(id) => restart.follow(id, now),
            // An answer without a new deployment: look at the service to be sure.
            None => Next::Look,
        },
        Event::Resumed | Event::Abandon { .. } | Event::Inspected(_) => {
            if !restart.looked {
                return Next::Look;
            }
            match restart.sent_at {
                // The answer was never read (the process died, or the call timed out).
                Some(sent) if now - sent < LOOKUP_DELAY_SECONDS => {
                    Next::Wait(LOOKUP_DELAY_SECONDS - (now - sent))
                }
                Some(_) => Next::Look,
                None => send(restart, now),
            }
        }
    }
}

/// The deployment the service has and did not have before the restart: the PRIMARY one
/// if it is new, else the newest new one.
fn new_deployment(restart: &Restart, service: &ServiceState) -> Option<String> {
    let new: Vec<&Deployment> = service
        .deployments
        .iter()
        .filter(|d| !restart.known.contains(&d.id))
        .collect();
    new.iter()
        .find(|d| d.status == "PRIMARY")
        .or_else(|| {
            new.iter().max_by(|a, b| {
                a.created_at
                    .unwrap_or(0.0)
                    .total_cmp(&b.created_at.unwrap_or(0.0))
            })
        })
        .map(|d| d.id.clone())
}

/// The most deployments a restart keeps as known (the record is small; ECS lists a few
/// deployments, and one is hidden by eventual consistency only for a while).
pub const KNOWN_KEPT: usize = 12;

/// What a new restart of the same resource starts knowing: the deployments the previous
/// restart knew and the one it followed, newest last. DescribeServices may not show them
/// yet at the new restart's first look (it is eventually consistent); once it does, they
/// must not pass for the one the new restart started.
pub fn known_after(previous: &Restart) -> Vec<String> {
    let mut known = previous.known.clone();
    known.extend(previous.deployment.clone());
    known.dedup();
    let keep = known.len().saturating_sub(KNOWN_KEPT);
    known.split_off(keep)
}

/// Records that UpdateService is being sent (before it is), then sends it.
fn send(restart: &mut Restart, now: f64) -> Next {
    if now >= restart.deadline {
        return restart.timed_out_starting(now);
    }
    restart.sent_at = Some(now);
    Next::Update
}

/// A restart whose looks are throttled when its Timeout passes goes on trying this long:
/// throttling alone does not time out a deployment that completed in time.
pub const THROTTLED_GRACE_SECONDS: f64 = 300.0;

fn throttled_grace(throttled: bool) -> f64 {
    if throttled {
        THROTTLED_GRACE_SECONDS
    } else {
        0.0
    }
}

fn following(restart: &mut Restart, event: Event, now: f64) -> Next {
    let id = restart.deployment.clone().unwrap_or_default();
    match event {
        Event::Looked(Ok(Some(service))) => {
            restart.throttled = 0;
            look_at(restart, &id, &service, now)
        }
        Event::Looked(Ok(None)) => {
            let reason = format!(
                "service {} no longer exists in cluster {}",
                restart.service, restart.cluster
            );
            restart.end(Ending::Failed, Some(reason), now)
        }
        Event::Looked(Err(fault)) if fault.is_transient() => {
            let throttled = fault.kind == FaultKind::Throttled;
            let delay = restart.pause_after(throttled, restart.poll_delay(now), now);
            if now >= restart.deadline + throttled_grace(throttled) {
                let reason = format!(
                    "timed out after {} s: service {} could not be read ({fault}); deployment {id} was left as ECS runs it",
                    restart.timeout, restart.service
                );
                return end_timed_out(restart, reason, "when last seen, ", now);
            }
            Next::Wait(delay)
        }
        Event::Looked(Err(fault)) => {
            let reason = format!(
                "deployment {id} of service {} could not be followed: {fault}",
                restart.service
            );
            restart.end(Ending::Rejected { fault: fault.kind }, Some(reason), now)
        }
        // The hooks are a report: what DescribeServiceDeployments says changes only it,
        // and a refusal only stops the asking.
        Event::Inspected(Ok(found)) => {
            restart.waiting = found.as_ref().and_then(HookWait::of);
            match restart.closing.take() {
                Some(reason) => end_timed_out(restart, reason, "", now),
                None => Next::Wait(restart.poll_delay(now)),
            }
        }
        Event::Inspected(Err(fault)) => {
            if !fault.is_transient() {
                restart.hooks_unreadable = true;
            }
            match restart.closing.take() {
                Some(reason) => end_timed_out(restart, reason, "when last seen, ", now),
                None => Next::Wait(restart.poll_delay(now)),
            }
        }
        _ => Next::Look,
    }
}

/// ECS's own `aws ecs wait services-stable` waiter, for a service whose deployments have
/// no rolloutState: "Wait until JMESPath query length(services[?!(length(deployments) == 1
/// && runningCount == desiredCount)]) == 0 returns True when polling with
/// describe-services" (AWS CLI Command Reference, "services-stable"). Narrowed to the
/// restart's deployment: it must be the PRIMARY one (a rollback or a newer deployment
/// also leaves one deployment running its count, but not ours).
fn stable_without_rollout_state(service: &ServiceState, deployment: &Deployment) -> bool {
    deployment.status == "PRIMARY"
        && service.deployments.len() == 1
        && deployment.running == deployment.desired
}

/// One DescribeServices answer while following deployment `id`.
fn look_at(restart: &mut Restart, id: &str, service: &ServiceState, now: f64) -> Next {
    let Some(deployment) = service.deployments.iter().find(|d| d.id == id) else {
        let primary = service.primary();
        let replaced = primary.is_some_and(|p| !restart.known.contains(&p.id));
        // Just started, DescribeServices may not show it yet (eventual consistency).
        let fresh = restart
            .followed_at
            .is_some_and(|at| now - at < LOOKUP_WINDOW_SECONDS);
        if !replaced && fresh {
            if now >= restart.deadline {
                let reason = format!(
                    "timed out after {} s: deployment {id} of service {} is not listed by DescribeServices yet; nothing was stopped: ECS goes on with it",
                    restart.timeout, restart.service
                );
                return restart.end(Ending::TimedOut, Some(reason), now);
            }
            return Next::Wait(restart.poll_delay(now));
        }
        let reason = format!(
            "deployment {id} of service {} is no longer listed (the PRIMARY deployment is {}): another deployment replaced it",
            restart.service,
            primary.map_or("none", |d| d.id.as_str())
        );
        return restart.end(Ending::Failed, Some(reason), now);
    };
    let done = match deployment.rollout_state.as_deref() {
        Some("FAILED") => {
            let reason = failure(&restart.service, deployment, service);
            return restart.end(Ending::Failed, Some(reason), now);
        }
        // Only the PRIMARY deployment is rolled out: one that is not any more was rolled
        // back (without rolloutState, the circuit breaker's rollback shows so) or replaced.
        _ if deployment.status != "PRIMARY" => {
            let reason = failure(&restart.service, deployment, service);
            return restart.end(Ending::Failed, Some(reason), now);
        }
        Some("COMPLETED") => {
            restart.wait_for == WaitFor::Started || deployment.running >= deployment.desired
        }
        Some(_) => false,
        None => stable_without_rollout_state(service, deployment),
    };
    if done {
        return restart.end(Ending::Succeeded, None, now);
    }
    // Our deployment is the PRIMARY one: the service's current service deployment is it.
    let inspect = service
        .current_service_deployment
        .clone()
        .filter(|_| service.lifecycle_hooks && !restart.hooks_unreadable);
    if now >= restart.deadline {
        let reason = timed_out(restart, deployment, service);
        return match inspect {
            // Where it waits now, not at the last poll: looked at once more first.
            Some(arn) => {
                restart.closing = Some(reason);
                Next::Inspect(arn)
            }
            None => end_timed_out(restart, reason, "when last seen, ", now),
        };
    }
    match inspect {
        Some(arn) => Next::Inspect(arn),
        None => {
            restart.waiting = None;
            Next::Wait(restart.poll_delay(now))
        }
    }
}

/// Ends the restart TIMED_OUT with `reason` and, if the deployment waits at a hook, where
/// and what to do (`seen` qualifies how fresh that is).
fn end_timed_out(restart: &mut Restart, mut reason: String, seen: &str, now: f64) -> Next {
    if let Some(waiting) = &restart.waiting {
        reason.push_str("; ");
        reason.push_str(seen);
        reason.push_str(&waiting.describe());
    }
    restart.end(Ending::TimedOut, Some(reason), now)
}

/// The reason of a restart whose deployment did not finish in time: how it was left, and
/// by what rule it would have been done.
fn timed_out(restart: &Restart, deployment: &Deployment, service: &ServiceState) -> String {
    let state = match deployment.rollout_state.as_deref() {
        Some(state) => state.to_string(),
        None => format!(
            "unsettled (ECS shows no rolloutState for it{}: it counts as done once it is the only deployment listed, running its desired count, as `aws ecs wait services-stable` judges; {} deployments are listed)",
            if service.classic_load_balancers.is_empty() {
                String::new()
            } else {
                format!(
                    ", as for any service behind a Classic Load Balancer ({})",
                    service.classic_load_balancers.join(", ")
                )
            },
            service.deployments.len()
        ),
    };
    format!(
        "timed out after {} s: deployment {} of service {} was left {state} ({} running, {} pending of {} desired, {} failed tasks); nothing was stopped: ECS goes on with it",
        restart.timeout,
        deployment.id,
        restart.service,
        deployment.running,
        deployment.pending,
        deployment.desired,
        deployment.failed_tasks,
    )
}

/// What a failed deployment says: its reason, its failed tasks, and the service's last
/// events since it began.
fn failure(service_name: &str, deployment: &Deployment, service: &ServiceState) -> String {
    let mut reason = match deployment.rollout_state.as_deref() {
        Some("FAILED") => format!(
            "deployment {} of service {service_name} failed: {}",
            deployment.id,
            deployment
                .rollout_reason
                .as_deref()
                .unwrap_or("no reason given")
        ),
        _ => format!(
            "deployment {} of service {service_name} is no longer the PRIMARY deployment: ECS rolled it back or another deployment replaced it",
            deployment.id
        ),
    };
    if deployment.failed_tasks > 0 {
        reason.push_str(&format!(
            "; {} tasks failed to start or stay running",
            deployment.failed_tasks
        ));
    }
    if let Some(primary) = service.primary().filter(|p| p.id != deployment.id) {
        reason.push_str(&format!(
            "; the service is back on deployment {}",
            primary.id
        ));
    }
    let since = deployment.created_at.unwrap_or(0.0);
    let events: Vec<&str> = service
        .events
        .iter()
        .filter(|e| e.at >= since)
        .take(EVENTS_QUOTED)
        .map(|e| e.message.as_str())
        .collect();
    if !events.is_empty() {
        reason.push_str("\nlast service events:");
        for event in events {
            reason.push_str("\n  ");
            reason.push_str(event);
        }
    }
    reason
}

#[cfg(test)]
mod tests;
