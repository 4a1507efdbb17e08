//! The Following phase: the deployment the restart started, polled with
//! DescribeServices (and, where the service has lifecycle hooks, DescribeServiceDeployments)
//! until it succeeds, fails, is replaced or the Timeout passes.

use super::{
    throttled_grace, Ending, Event, HookWait, Next, Restart, WaitFor, EVENTS_QUOTED,
    LOOKUP_WINDOW_SECONDS,
};
use crate::services::{Deployment, FaultKind, ServiceState};

/// One event while Following.
pub(super) fn step(restart: &mut Restart, event: Event, now: f64) -> Next {
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
            let reason = failure_reason(&restart.service, deployment, service);
            return restart.end(Ending::Failed, Some(reason), now);
        }
        // Only the PRIMARY deployment is rolled out: one that is not any more was rolled
        // back (without rolloutState, the circuit breaker's rollback shows so) or replaced.
        _ if deployment.status != "PRIMARY" => {
            let reason = failure_reason(&restart.service, deployment, service);
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
        let reason = timed_out_reason(restart, deployment, service);
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
fn timed_out_reason(restart: &Restart, deployment: &Deployment, service: &ServiceState) -> String {
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
fn failure_reason(service_name: &str, deployment: &Deployment, service: &ServiceState) -> String {
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
