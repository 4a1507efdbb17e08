//! Every request the handlers send, as AWS receives it (see `test_support::wire`): the
//! property scenarios run over the in-memory ECS, store and EventBridge; with a [`Wire`]
//! on, each call is also made through the real SDK gateways (`SdkEcs`, `SsmStore`,
//! `SdkEvents`) and checked as AWS would.

use std::sync::Arc;

use cfn_protocol::CredentialsProblem;
use cfn_protocol::HandlerRequest;
use handler_kit::resource::Backend;
use taskrun::ecs::{
    Described, Ecs, Fault, LaunchSpec, Launched, LogPage, LogPageQuery, StartedTask,
    TaskDefinitionInfo,
};
use taskrun::ecs_sdk::SdkEcs;
use taskrun::sim::{SimBackend, SimEcs, VirtualClock};
use test_support::sdk_config;
use test_support::wire::{Recorded, RecordedEvents};

/// The serialized requests, and the SDK clients that make them.
pub type Wire = test_support::wire::Wire<SdkEcs>;

/// A wire with what the production backend builds.
pub fn new() -> Wire {
    Wire::new("Org::ECS::TaskRun run record", |parts| SdkEcs {
        client: aws_sdk_ecs::Client::from_conf(sdk_config!(aws_sdk_ecs, parts)),
        logs: aws_sdk_cloudwatchlogs::Client::from_conf(sdk_config!(aws_sdk_cloudwatchlogs, parts)),
        stacks: aws_sdk_cloudformation::Client::from_conf(sdk_config!(
            aws_sdk_cloudformation,
            parts
        )),
    })
}

/// The ECS twin, with every call also made on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct RecordedEcs {
    pub inner: SimEcs,
    pub wire: Option<Arc<Wire>>,
}

impl Ecs for RecordedEcs {
    async fn describe_task_definition(
        &self,
        reference: &str,
        by: f64,
    ) -> Result<TaskDefinitionInfo, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_task_definition(reference, w.by()));
        }
        self.inner.describe_task_definition(reference, by).await
    }

    async fn run_task(
        &self,
        spec: &LaunchSpec,
        count: u32,
        client_token: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.run_task(spec, count, client_token, w.by()));
        }
        self.inner.run_task(spec, count, client_token, by).await
    }

    async fn start_task(
        &self,
        spec: &LaunchSpec,
        instances: &[String],
        attempt: &str,
        by: f64,
    ) -> Result<Launched, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.start_task(spec, instances, attempt, w.by()));
        }
        self.inner.start_task(spec, instances, attempt, by).await
    }

    async fn find_started(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<StartedTask>, Fault> {
        let answer = self.inner.find_started(cluster, started_by, by).await;
        if let Some(w) = &self.wire {
            w.send(w.ecs.find_started(cluster, started_by, w.by()));
            // The DescribeTasks (include TAGS) the SDK makes of what ListTasks found:
            // the answer `{}` found nothing, so make it for the twin's tasks.
            if let Ok(found) = &answer {
                let arns: Vec<String> = found.iter().map(|t| t.arn.clone()).collect();
                for chunk in arns.chunks(100) {
                    w.send(
                        w.ecs
                            .client
                            .describe_tasks()
                            .cluster(cluster)
                            .set_tasks(Some(chunk.to_vec()))
                            .include(aws_sdk_ecs::types::TaskField::Tags)
                            .send(),
                    );
                }
            }
        }
        answer
    }

    async fn describe_tasks(
        &self,
        cluster: &str,
        arns: &[String],
        by: f64,
    ) -> Result<Described, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.describe_tasks(cluster, arns, w.by()));
        }
        self.inner.describe_tasks(cluster, arns, by).await
    }

    async fn stop_task(
        &self,
        cluster: &str,
        arn: &str,
        reason: &str,
        by: f64,
    ) -> Result<(), Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.stop_task(cluster, arn, reason, w.by()));
        }
        self.inner.stop_task(cluster, arn, reason, by).await
    }

    async fn log_page(&self, query: &LogPageQuery, by: f64) -> Result<Option<LogPage>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.log_page(query, w.by()));
        }
        self.inner.log_page(query, by).await
    }

    async fn stack_status(&self, stack_id: &str, by: f64) -> Result<Option<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.stack_status(stack_id, w.by()));
        }
        self.inner.stack_status(stack_id, by).await
    }

    async fn list_running(
        &self,
        cluster: &str,
        started_by: &str,
        by: f64,
    ) -> Result<Vec<String>, Fault> {
        if let Some(w) = &self.wire {
            w.send(w.ecs.list_running(cluster, started_by, w.by()));
        }
        self.inner.list_running(cluster, started_by, by).await
    }
}

/// The simulation's backend, each call also on the wire when a [`Wire`] is on.
#[derive(Clone)]
pub struct WireBackend {
    pub sim: SimBackend,
    pub wire: Option<Arc<Wire>>,
}

impl Backend for WireBackend {
    type Gateway = RecordedEcs;
    type Store = Recorded<Arc<taskrun::store::MemoryStore>, SdkEcs>;
    type Clock = VirtualClock;

    async fn connect(
        &self,
        request: &HandlerRequest,
    ) -> Result<(Self::Gateway, Self::Store), CredentialsProblem> {
        let (ecs, store) = self.sim.connect(request).await?;
        Ok((
            RecordedEcs {
                inner: ecs,
                wire: self.wire.clone(),
            },
            Recorded {
                inner: store,
                wire: self.wire.clone(),
            },
        ))
    }

    fn clock(&self) -> &VirtualClock {
        self.sim.clock()
    }

    /// The twin's EventBridge, each PutEvents also on the wire when a [`Wire`] is on.
    async fn events(&self, request: &HandlerRequest) -> Box<dyn handler_kit::events::EventSink> {
        let inner = self.sim.events(request).await;
        match &self.wire {
            Some(wire) => Box::new(RecordedEvents {
                inner,
                wire: Some(wire.clone()),
            }),
            None => inner,
        }
    }
}
