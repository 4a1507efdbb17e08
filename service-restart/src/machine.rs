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
//! writes every change to the record before acting on it. It hands the event to the
//! restart's phase: `starting` (look, send, look up a lost answer) and `following` (the
//! deployment polled to its end) are a module each; the types, what every phase does
//! alike (ending, pausing) and what a new restart starts knowing are here.

use handler_kit::pace;
use serde::{Deserialize, Serialize};

use crate::fingerprint::Fingerprint;
use crate::services::{Fault, FaultKind, ServiceDeploymentState, ServiceState};

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
    /// Whether the service was looked at before the restart (to learn `known`).
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
    /// What the restart's inputs were, for the next update to compare with: carried, never
    /// read here (the record takes it as its baseline once the restart succeeded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<Fingerprint>,
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
        let base =
            ((now - self.started_at) / 10.0).clamp(1.0, f64::from(self.poll_interval.max(1)));
        pace::spread(base, pace::jitter(&self.token, now, self.throttled))
    }

    /// Counts a throttled call or an answered one, and says how long to pause: a backoff
    /// with full jitter when throttled (DescribeServices and UpdateService buckets are the
    /// account's: 20 and 5 a second, shared with every caller), else `otherwise`.
    fn pause_after(&mut self, was_throttled: bool, otherwise: f64, now: f64) -> f64 {
        if was_throttled {
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
        (Phase::Starting, event) => starting::step(&mut restart, event, now),
        (Phase::Following, event) => following::step(&mut restart, event, now),
    };
    (restart, next)
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

mod following;
mod starting;

#[cfg(test)]
mod tests;
