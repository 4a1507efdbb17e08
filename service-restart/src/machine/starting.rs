//! The Starting phase: the service looked at, then UpdateService (forceNewDeployment)
//! recorded as sent and sent; an answer that was lost looked up, never sent again
//! blindly; until a new deployment is seen and followed.

use super::{
    throttled_grace, Ending, Event, Next, Phase, Restart, WaitFor, KNOWN_KEPT,
    LOOKUP_DELAY_SECONDS, LOOKUP_WINDOW_SECONDS, RETRY_DELAY_SECONDS,
};
use crate::services::{Deployment, FaultKind, ServiceState, CODE_DEPLOY};

/// One event while Starting.
pub(super) fn step(restart: &mut Restart, event: Event, now: f64) -> Next {
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
                    Some(id) => return follow(restart, id, now),
                    None if now - sent < LOOKUP_WINDOW_SECONDS => {
                        if now >= restart.deadline {
                            return end_timed_out(restart, now);
                        }
                        let window_left = LOOKUP_WINDOW_SECONDS - (now - sent);
                        // Longer each time, but never past the window's end (which can
                        // be nearer than the shortest pause: no `clamp`, which panics).
                        return Next::Wait((now - sent).max(LOOKUP_DELAY_SECONDS).min(window_left));
                    }
                    None => restart.sent_at = None,
                }
            }
            if let Some(controller) = service.foreign_controller() {
                let reason = foreign_controller_reason(restart, controller);
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
                return end_timed_out(restart, now);
            }
            Next::Wait(delay)
        }
        Event::Updated(Err(fault)) if fault.is_transient() => {
            let throttled = fault.kind == FaultKind::Throttled;
            if now >= restart.deadline + throttled_grace(throttled) {
                return end_timed_out(restart, now);
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
            Some(id) => follow(restart, id, now),
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

/// Records that UpdateService is being sent, then asks for it (the driver writes the
/// record before it acts).
fn send(restart: &mut Restart, now: f64) -> Next {
    if now >= restart.deadline {
        return end_timed_out(restart, now);
    }
    restart.sent_at = Some(now);
    Next::Update
}

/// Takes `deployment` as the restart's: it is followed from now on.
fn follow(restart: &mut Restart, deployment: String, now: f64) -> Next {
    restart.deployment = Some(deployment);
    restart.sent_at = None;
    restart.followed_at = Some(now);
    restart.phase = Phase::Following;
    if restart.wait_for == WaitFor::Started {
        return restart.end(Ending::Succeeded, None, now);
    }
    Next::Wait(restart.poll_delay(now))
}

/// Ends the restart TIMED_OUT before it had a deployment to follow.
fn end_timed_out(restart: &mut Restart, now: f64) -> Next {
    let reason = match restart.sent_at {
        // The answer of an UpdateService was lost, and no new deployment was seen.
        Some(_) => format!(
            "timed out after {} s before a deployment of service {} could be seen (an UpdateService whose answer was lost may have started one, which then goes on as ECS runs it)",
            restart.timeout, restart.service
        ),
        None => format!(
            "timed out after {} s before service {} could be restarted (nothing was started)",
            restart.timeout, restart.service
        ),
    };
    restart.end(Ending::TimedOut, Some(reason), now)
}

/// Why UpdateService cannot restart a service of this controller, and what can.
fn foreign_controller_reason(restart: &Restart, controller: &str) -> String {
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
