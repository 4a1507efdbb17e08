//! A restart's state machine: the one place where a restart changes state.
//!
//! ```text
//!   Starting ── look at the service (its PRIMARY deployment before ours) ──┐
//!      │                                                                   │
//!      │  UpdateService forceNewDeployment (recorded as sent first; an     │
//!      │  answer that was lost is looked up, never sent again blindly)     │
//!      ▼                                                                   │
//!   Following ── the deployment COMPLETED (and, for STEADY_STATE, running ─┤
//!      │          = desired) ──▶ Ended(Succeeded)                          │
//!      │── FAILED (circuit breaker) / gone ──▶ Ended(Failed)               │
//!      │── Timeout ──▶ Ended(TimedOut): nothing to stop, ECS goes on       │
//!      └── another operation takes over ──▶ Ended(Superseded) ◀───────────┘
//! ```
//!
//! [`step`] takes the restart, what just happened and the time, and returns the restart
//! as it is now and what to do next. No I/O: the shared driver (`handler_kit::driver`)
//! writes every change to the record before acting on it.

use serde::{Deserialize, Serialize};

use crate::services::{Deployment, Fault, FaultKind, ServiceState};

/// How long after an UpdateService whose answer was lost to look for the deployment it
/// may have started (DescribeServices is eventually consistent).
pub const LOOKUP_DELAY_SECONDS: f64 = 5.0;
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Resumed,
    /// DescribeServices: the service, or `None` when ECS has no active one by that name.
    Looked(Result<Option<ServiceState>, Fault>),
    /// UpdateService with forceNewDeployment.
    Updated(Result<ServiceState, Fault>),
    /// Another operation takes over.
    Abandon {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Look,
    Update,
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
        }
    }

    pub fn is_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// A tenth of the time the restart has been going, at least 1 s, at most PollInterval.
    pub fn poll_delay(&self, now: f64) -> f64 {
        ((now - self.started_at) / 10.0).clamp(1.0, f64::from(self.poll_interval))
    }

    fn end(&mut self, ending: Ending, reason: Option<String>, now: f64) -> Next {
        self.phase = Phase::Ended;
        self.ending = Some(ending);
        self.reason = reason;
        self.finished_at = Some(now);
        self.sent_at = None;
        Next::Done
    }

    /// Takes `deployment` as the restart's: it is followed from now on.
    fn follow(&mut self, deployment: String, now: f64) -> Next {
        self.deployment = Some(deployment);
        self.sent_at = None;
        self.phase = Phase::Following;
        if self.wait_for == WaitFor::Started {
            return self.end(Ending::Succeeded, None, now);
        }
        Next::Wait(self.poll_delay(now))
    }

    fn timed_out_starting(&mut self, now: f64) -> Next {
        let reason = format!(
            "timed out after {} s before service {} could be restarted (nothing was started)",
            self.timeout, self.service
        );
        self.end(Ending::TimedOut, Some(reason), now)
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
                restart.known = service.deployments.iter().map(|d| d.id.clone()).collect();
            } else if restart.sent_at.is_some() {
                // UpdateService was sent and its answer lost: a deployment the service
                // did not have before is the one it started.
                match new_deployment(restart, &service) {
                    Some(id) => return restart.follow(id, now),
                    None => restart.sent_at = None,
                }
            }
            send(restart, now)
        }
        // A look that failed changes nothing: look again later (the restart may have
        // been sent; only a look can tell).
        Event::Looked(Err(fault)) if fault.is_transient() => {
            if now >= restart.deadline {
                return restart.timed_out_starting(now);
            }
            Next::Wait(RETRY_DELAY_SECONDS)
        }
        Event::Updated(Err(fault)) if fault.is_transient() => {
            if now >= restart.deadline {
                return restart.timed_out_starting(now);
            }
            // An UpdateService that may have acted is looked up, not repeated; one that
            // certainly did not (throttled) may go again.
            if fault.may_have_acted {
                return Next::Wait(LOOKUP_DELAY_SECONDS);
            }
            restart.sent_at = None;
            Next::Wait(RETRY_DELAY_SECONDS)
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
        Event::Resumed | Event::Abandon { .. } => {
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

/// Records that UpdateService is being sent (before it is), then sends it.
fn send(restart: &mut Restart, now: f64) -> Next {
    if now >= restart.deadline {
        return restart.timed_out_starting(now);
    }
    restart.sent_at = Some(now);
    Next::Update
}

fn following(restart: &mut Restart, event: Event, now: f64) -> Next {
    let id = restart.deployment.clone().unwrap_or_default();
    match event {
        Event::Looked(Ok(Some(service))) => {
            let Some(deployment) = service.deployments.iter().find(|d| d.id == id) else {
                let replaced = service.primary().map_or("none".into(), |d| d.id.clone());
                let reason = format!(
                    "deployment {id} of service {} is no longer listed (the PRIMARY deployment is {replaced}): another deployment replaced it",
                    restart.service
                );
                return restart.end(Ending::Failed, Some(reason), now);
            };
            match deployment.rollout_state.as_deref() {
                Some("COMPLETED")
                    if restart.wait_for == WaitFor::Started
                        || deployment.running >= deployment.desired =>
                {
                    restart.end(Ending::Succeeded, None, now)
                }
                Some("FAILED") => {
                    let reason = failure(&restart.service, deployment, &service);
                    restart.end(Ending::Failed, Some(reason), now)
                }
                _ if now >= restart.deadline => {
                    let reason = format!(
                        "timed out after {} s: deployment {id} of service {} was left {} ({} running, {} pending of {} desired, {} failed tasks); nothing was stopped: ECS goes on with it",
                        restart.timeout,
                        restart.service,
                        deployment.rollout_state.as_deref().unwrap_or("IN_PROGRESS"),
                        deployment.running,
                        deployment.pending,
                        deployment.desired,
                        deployment.failed_tasks,
                    );
                    restart.end(Ending::TimedOut, Some(reason), now)
                }
                _ => Next::Wait(restart.poll_delay(now)),
            }
        }
        Event::Looked(Ok(None)) => {
            let reason = format!(
                "service {} no longer exists in cluster {}",
                restart.service, restart.cluster
            );
            restart.end(Ending::Failed, Some(reason), now)
        }
        Event::Looked(Err(fault)) if fault.is_transient() => {
            if now >= restart.deadline {
                let reason = format!(
                    "timed out after {} s: service {} could not be read ({fault}); deployment {id} was left as ECS runs it",
                    restart.timeout, restart.service
                );
                return restart.end(Ending::TimedOut, Some(reason), now);
            }
            Next::Wait(restart.poll_delay(now))
        }
        Event::Looked(Err(fault)) => {
            let reason = format!(
                "deployment {id} of service {} could not be followed: {fault}",
                restart.service
            );
            restart.end(Ending::Rejected { fault: fault.kind }, Some(reason), now)
        }
        _ => Next::Look,
    }
}

/// What a failed deployment says: its reason, its failed tasks, and the service's last
/// events since it began.
fn failure(service_name: &str, deployment: &Deployment, service: &ServiceState) -> String {
    let mut reason = format!(
        "deployment {} of service {service_name} failed: {}",
        deployment.id,
        deployment
            .rollout_reason
            .as_deref()
            .unwrap_or("no reason given")
    );
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
