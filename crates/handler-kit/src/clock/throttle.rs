//! AWS's request throttling, on the virtual clock, for the in-memory twins (off unless a
//! test turns it on, so the property tests see the twins as before).
//!
//! ECS API Reference, "Request throttling for the Amazon ECS API": ECS "throttles all API
//! requests for each AWS account on a per-Region basis", with the token bucket algorithm:
//! "the bucket maximum capacity signifies the burst rate and the bucket refill rate is the
//! sustained rate"; each request takes a token; "All API actions in a category share the
//! same token bucket", and a request that finds no token is answered `ThrottlingException`
//! ("Rate exceeded"), HTTP 400. Every caller of the account draws from the same buckets: a
//! background consumer takes a share of every bucket's refill (modelled as the refill this
//! account's handlers see being `(1 - share)` of AWS's: the other consumer takes its share
//! first, continuously). One twin is one account in one Region.
//!
//! The rules are the ones `emulator/buckets.py` models (same names, same figures), so that
//! the twins and the emulator throttle alike. On top, a "throttle any call with probability
//! p" mode (seeded, reproducible), and the SDK gateways' own retries of a throttled call
//! (see [`sdk_attempts`]), which sit between the handler and AWS in production.

use std::collections::BTreeMap;

use super::{Clock, VirtualClock};
use crate::fault::{Fault, FaultKind};

/// One token bucket: its burst (capacity) and refill per second, for every caller of the
/// account together.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BucketRule {
    pub name: &'static str,
    pub burst: f64,
    pub refill: f64,
}

// ECS API Reference, "Request throttling for the Amazon ECS API", throttle quotas (burst /
// sustained per second), by category:
/// "Cluster resource read actions": DescribeTasks, ListTasks (and DescribeContainerInstances,
/// ListContainerInstances, ListAttributes): 100 / 20.
pub const ECS_CLUSTER_READ: BucketRule = BucketRule {
    name: "ecs-cluster-read",
    burst: 100.0,
    refill: 20.0,
};
/// "Cluster resource modify actions": RunTask, StartTask, StopTask: 100 / 40.
pub const ECS_CLUSTER_MODIFY: BucketRule = BucketRule {
    name: "ecs-cluster-modify",
    burst: 100.0,
    refill: 40.0,
};
/// "Task definition read actions": DescribeTaskDefinition: 50 / 20.
pub const ECS_TASK_DEFINITION_READ: BucketRule = BucketRule {
    name: "ecs-task-definition-read",
    burst: 50.0,
    refill: 20.0,
};
/// "Service read actions": DescribeServices: 100 / 20. DescribeServiceDeployments is not
/// in the page's lists (it is newer than the page's tables): **assumed** to draw on this
/// bucket, as a read of a service.
pub const ECS_SERVICE_READ: BucketRule = BucketRule {
    name: "ecs-service-read",
    burst: 100.0,
    refill: 20.0,
};
/// "Service modify actions": UpdateService: 50 / 5.
pub const ECS_SERVICE_MODIFY: BucketRule = BucketRule {
    name: "ecs-service-modify",
    burst: 50.0,
    refill: 5.0,
};
/// Amazon ECS Developer Guide, "AWS Fargate throttling quotas": RunTask calls that launch
/// on Fargate, 20 per second, burst 20, on top of the cluster-modify bucket.
pub const FARGATE_RUN_TASK: BucketRule = BucketRule {
    name: "fargate-run-task",
    burst: 20.0,
    refill: 20.0,
};
/// SSM PutParameter: not documented; AWS Support reportedly gave 3 per second
/// (github-aws-runners/terraform-aws-github-runner#2944); burst 3 / refill 3. The
/// PutParameter reference itself says: "If you experience ThrottlingException: Rate
/// exceeded errors, enable higher throughput."
pub const SSM_PUT_PARAMETER: BucketRule = BucketRule {
    name: "ssm-put-parameter",
    burst: 3.0,
    refill: 3.0,
};
/// AWS Systems Manager endpoints and quotas, "GetParameter, GetParameters,
/// GetParametersByPath": the default Parameter Store throughput, 40 transactions per
/// second shared (burst taken as 40).
pub const SSM_GET_PARAMETER: BucketRule = BucketRule {
    name: "ssm-get-parameter",
    burst: 40.0,
    refill: 40.0,
};

/// The buckets of the ECS twin of tasks.
pub const ECS_TASK_RULES: [BucketRule; 4] = [
    ECS_CLUSTER_READ,
    ECS_CLUSTER_MODIFY,
    ECS_TASK_DEFINITION_READ,
    FARGATE_RUN_TASK,
];
/// The buckets of the ECS twin of services.
pub const ECS_SERVICE_RULES: [BucketRule; 2] = [ECS_SERVICE_READ, ECS_SERVICE_MODIFY];
/// The buckets of the parameter store twin.
pub const SSM_RULES: [BucketRule; 2] = [SSM_PUT_PARAMETER, SSM_GET_PARAMETER];

/// The bucket an operation draws on (`None`: none modelled). RunTask on Fargate also draws
/// on [`FARGATE_RUN_TASK`], which the caller adds (it depends on the request).
/// Not modelled: CloudWatch Logs GetLogEvents (not in the table), SSM
/// DeleteParameter (no documented or reported rate).
pub fn bucket_of(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "ecs:DescribeTasks" | "ecs:ListTasks" => ECS_CLUSTER_READ.name,
        "ecs:RunTask" | "ecs:StartTask" | "ecs:StopTask" => ECS_CLUSTER_MODIFY.name,
        "ecs:DescribeTaskDefinition" => ECS_TASK_DEFINITION_READ.name,
        "ecs:DescribeServices" | "ecs:DescribeServiceDeployments" => ECS_SERVICE_READ.name,
        "ecs:UpdateService" => ECS_SERVICE_MODIFY.name,
        "ssm:PutParameter" => SSM_PUT_PARAMETER.name,
        "ssm:GetParameter" | "ssm:GetParameters" | "ssm:GetParametersByPath" => {
            SSM_GET_PARAMETER.name
        }
        _ => return None,
    })
}

/// Attempts the SDK gateway makes of one call: the shared SDK configuration is standard
/// retry mode with 3 attempts (`handler-kit/src/aws.rs`, `RetryConfig::standard()
/// .with_max_attempts(3)`), except where a second send could act twice: StartTask
/// (`src/ecs_sdk.rs`, `no_retries`) and UpdateService (`service-restart/src/
/// services_sdk.rs`), sent once.
pub fn sdk_attempts(operation: &str) -> u32 {
    match operation {
        "ecs:StartTask" | "ecs:UpdateService" => 1,
        _ => 3,
    }
}

/// The backoff of the SDK's standard retry strategy before retry `retry` (1 for the first
/// retry): `random(0, 1) * min(20 s, 1 s * 2^(retry - 1))` (aws-smithy-runtime,
/// `retries/strategy/standard.rs`, `calculate_exponential_backoff`, initial backoff 1 s for
/// throttling errors, max backoff 20 s). The SDK's retry quota (500 tokens per client, 5
/// per throttling retry) is not modelled: a client lives for one invocation.
pub fn sdk_backoff(retry: u32, random: f64) -> f64 {
    let exponent = retry.saturating_sub(1).min(16);
    random * (f64::from(1u32 << exponent)).min(20.0)
}

/// How the twins throttle. Off by default.
#[derive(Debug, Clone, PartialEq)]
pub struct Throttling {
    /// Token buckets with AWS's rates.
    pub buckets: bool,
    /// The share (0 to 1) of every bucket's refill that another consumer of the account
    /// takes.
    pub background: f64,
    /// Every call is throttled with this probability, whatever the buckets say.
    pub random: f64,
    /// Seed of the random draws (random throttling, SDK backoff jitter).
    pub seed: u64,
    /// The SDK gateway's retries of a throttled call ([`sdk_attempts`], [`sdk_backoff`]).
    pub sdk_retries: bool,
}

impl Default for Throttling {
    fn default() -> Self {
        Self {
            buckets: true,
            background: 0.0,
            random: 0.0,
            seed: 1,
            sdk_retries: false,
        }
    }
}

/// Calls one bucket allowed and throttled (attempts as AWS saw them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counted {
    pub allowed: u64,
    pub throttled: u64,
}

#[derive(Debug, Clone)]
struct Bucket {
    rule: BucketRule,
    level: f64,
    last: f64,
    counted: Counted,
}

/// What one attempt of a call meets.
#[derive(Debug, Clone, PartialEq)]
pub enum Attempt {
    Allowed,
    /// Throttled; the SDK sends it again after this many seconds.
    Retry {
        after: f64,
    },
    /// Throttled, and the SDK gives up: the handler gets this answer.
    Throttled(Fault),
}

/// The throttling state of one twin (one account in one Region): off by default.
#[derive(Debug, Clone, Default)]
pub struct Throttle {
    config: Option<Throttling>,
    buckets: Vec<Bucket>,
    rng: u64,
    /// Attempts throttled by the random mode, whatever the buckets held.
    pub random_throttled: u64,
    /// Throttled attempts the modelled SDK sent again.
    pub sdk_retries: u64,
    /// Throttled answers that reached the handler, by operation.
    pub surfaced: BTreeMap<&'static str, u64>,
}

impl Throttle {
    /// Buckets with `rules`, full at `now`.
    pub fn new(rules: &[BucketRule], config: Throttling, now: f64) -> Self {
        let buckets = if config.buckets {
            rules
                .iter()
                .map(|&rule| Bucket {
                    rule,
                    level: rule.burst,
                    last: now,
                    counted: Counted::default(),
                })
                .collect()
        } else {
            Vec::new()
        };
        Self {
            rng: config.seed ^ 0x9E37_79B9_7F4A_7C15,
            config: Some(config),
            buckets,
            random_throttled: 0,
            sdk_retries: 0,
            surfaced: BTreeMap::new(),
        }
    }

    pub fn is_on(&self) -> bool {
        self.config.is_some()
    }

    /// A uniform draw in [0, 1) (splitmix64).
    fn draw(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Attempt `attempt` (1-based) of `operation`, drawing on `buckets` at `now`.
    pub fn attempt(
        &mut self,
        operation: &'static str,
        buckets: &[&'static str],
        now: f64,
        attempt: u32,
    ) -> Attempt {
        let Some(config) = self.config.clone() else {
            return Attempt::Allowed;
        };
        let share = 1.0 - config.background.clamp(0.0, 1.0);
        let mut throttled = config.random > 0.0 && self.draw() < config.random;
        if throttled {
            self.random_throttled += 1;
        } else {
            let mut drawn: Vec<usize> = Vec::new();
            for (index, bucket) in self.buckets.iter_mut().enumerate() {
                if !buckets.contains(&bucket.rule.name) {
                    continue;
                }
                let elapsed = (now - bucket.last).max(0.0);
                bucket.level =
                    (bucket.level + elapsed * bucket.rule.refill * share).min(bucket.rule.burst);
                bucket.last = bucket.last.max(now);
                drawn.push(index);
            }
            if let Some(&empty) = drawn.iter().find(|&&i| self.buckets[i].level < 1.0) {
                self.buckets[empty].counted.throttled += 1;
                throttled = true;
            } else {
                for i in drawn {
                    self.buckets[i].level -= 1.0;
                    self.buckets[i].counted.allowed += 1;
                }
            }
        }
        if !throttled {
            return Attempt::Allowed;
        }
        if config.sdk_retries && attempt < sdk_attempts(operation) {
            self.sdk_retries += 1;
            let random = self.draw();
            return Attempt::Retry {
                after: sdk_backoff(attempt, random),
            };
        }
        *self.surfaced.entry(operation).or_default() += 1;
        Attempt::Throttled(Fault::from_service(
            operation,
            Some("ThrottlingException"),
            Some("Rate exceeded"),
            Some(400),
        ))
    }

    /// Allowed and throttled attempts per bucket, and the random mode's as `random`.
    pub fn counts(&self) -> Vec<(&'static str, Counted)> {
        let mut counts: Vec<(&'static str, Counted)> = self
            .buckets
            .iter()
            .map(|b| (b.rule.name, b.counted))
            .collect();
        if self.config.as_ref().is_some_and(|c| c.random > 0.0) {
            counts.push((
                "random",
                Counted {
                    allowed: 0,
                    throttled: self.random_throttled,
                },
            ));
        }
        counts
    }
}

/// Admits one call at AWS, as the SDK gateway makes it: each attempt asks `attempt` (given
/// the clock's time and the attempt's number) whether a bucket throttles it; a throttled
/// attempt takes `latency` to answer, then the SDK's backoff before the next one; a call
/// that the SDK gives up on answers the throttling fault. A call whose next attempt would
/// end past `by` is abandoned there, as the gateways' `by_deadline` does (a network fault
/// that may have acted; here it did not).
pub async fn admit(
    clock: &VirtualClock,
    operation: &'static str,
    by: f64,
    latency: f64,
    mut attempt: impl FnMut(f64, u32) -> Attempt,
) -> Result<(), Fault> {
    let mut number = 1;
    loop {
        match attempt(clock.now(), number) {
            Attempt::Allowed => return Ok(()),
            Attempt::Throttled(fault) => {
                pause(clock, operation, by, latency).await?;
                return Err(fault);
            }
            Attempt::Retry { after } => {
                pause(clock, operation, by, latency + after).await?;
                number += 1;
            }
        }
    }
}

/// Sleeps `seconds`, or until `by` and fails as a call cut at its deadline.
async fn pause(
    clock: &VirtualClock,
    operation: &'static str,
    by: f64,
    seconds: f64,
) -> Result<(), Fault> {
    let now = clock.now();
    if now + seconds > by {
        clock.sleep_until(by.max(now)).await;
        return Err(Fault::new(
            operation,
            FaultKind::Network,
            "no answer in time (simulated)",
        ));
    }
    clock.sleep(seconds).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_passes_then_the_refill_rate() {
        let mut throttle = Throttle::new(&ECS_TASK_RULES, Throttling::default(), 0.0);
        let read = [ECS_CLUSTER_READ.name];
        let allowed = (0..150)
            .filter(|_| throttle.attempt("ecs:DescribeTasks", &read, 0.0, 1) == Attempt::Allowed)
            .count();
        assert_eq!(allowed, 100);
        // One second later: 20 more.
        let allowed = (0..50)
            .filter(|_| throttle.attempt("ecs:DescribeTasks", &read, 1.0, 1) == Attempt::Allowed)
            .count();
        assert_eq!(allowed, 20);
        let counts = throttle.counts();
        assert_eq!(
            counts[0],
            (
                "ecs-cluster-read",
                Counted {
                    allowed: 120,
                    throttled: 80
                }
            )
        );
        let surfaced = throttle.surfaced["ecs:DescribeTasks"];
        assert_eq!(surfaced, 80);
    }

    #[test]
    fn a_background_consumer_takes_its_share_of_the_refill() {
        let config = Throttling {
            background: 0.25,
            ..Throttling::default()
        };
        let mut throttle = Throttle::new(&SSM_RULES, config, 0.0);
        let put = [SSM_PUT_PARAMETER.name];
        let mut allowed = 0;
        for tick in 0..=100 {
            let now = f64::from(tick) * 0.1;
            for _ in 0..5 {
                if throttle.attempt("ssm:PutParameter", &put, now, 1) == Attempt::Allowed {
                    allowed += 1;
                }
            }
        }
        // 3 at once, then 2.25 per second for 10 s.
        assert!((25..=26).contains(&allowed), "{allowed}");
    }

    #[test]
    fn the_sdk_retries_throttled_calls_with_jittered_backoff_and_random_mode_is_seeded() {
        let config = Throttling {
            buckets: false,
            random: 0.5,
            sdk_retries: true,
            seed: 7,
            ..Throttling::default()
        };
        let draws = |config: &Throttling| {
            let mut throttle = Throttle::new(&ECS_TASK_RULES, config.clone(), 0.0);
            (0..200)
                .map(|i| throttle.attempt("ecs:DescribeTasks", &[], 0.0, 1 + i % 3))
                .collect::<Vec<_>>()
        };
        let first = draws(&config);
        assert_eq!(first, draws(&config), "reproducible");
        let throttled = first.iter().filter(|a| **a != Attempt::Allowed).count();
        assert!((70..=130).contains(&throttled), "{throttled}");
        for (i, answer) in first.iter().enumerate() {
            match answer {
                Attempt::Retry { after } => {
                    let most = if i % 3 == 0 { 1.0 } else { 2.0 };
                    assert!((0.0..most).contains(after), "{after}");
                }
                Attempt::Throttled(fault) => {
                    assert_eq!(i % 3, 2, "the third attempt is the last");
                    assert_eq!(fault.kind, FaultKind::Throttled);
                    assert!(fault.message.contains("ThrottlingException: Rate exceeded"));
                }
                Attempt::Allowed => {}
            }
        }
        // StartTask is never retried by the SDK.
        let mut throttle = Throttle::new(&ECS_TASK_RULES, config, 0.0);
        let start = (0..20)
            .map(|_| throttle.attempt("ecs:StartTask", &[], 0.0, 1))
            .find(|a| *a != Attempt::Allowed);
        assert!(matches!(start, Some(Attempt::Throttled(_))), "{start:?}");
    }

    #[test]
    fn off_by_default() {
        let mut throttle = Throttle::default();
        assert!(!throttle.is_on());
        for _ in 0..1000 {
            assert_eq!(
                throttle.attempt("ssm:PutParameter", &[SSM_PUT_PARAMETER.name], 0.0, 1),
                Attempt::Allowed
            );
        }
        assert!(throttle.counts().is_empty());
    }
}
