//! `Org::ECS::TaskRun` as a [`cfn_protocol::Resource`]: per request, a [`Backend`] gives
//! the ECS gateway and the record store (acting with the caller's credentials), and the
//! action's handler runs over them.

use std::future::Future;

use cfn_protocol::{HandlerRequest, ProgressEvent, Resource};
use tracing::Instrument;

use crate::budget::Budget;
use crate::clock::{epoch_seconds, Clock};
use crate::ecs::Ecs;
use crate::error::TaskRunError;
use crate::handlers::Invocation;
use crate::store::ParameterStore;

/// Where a request's ECS and parameter store come from.
pub trait Backend: Sync {
    type Ecs: Ecs + Send + Sync;
    type Store: ParameterStore + Send + Sync;
    type Clock: Clock;

    /// The gateway and store for this request (with its caller's credentials).
    fn connect(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<(Self::Ecs, Self::Store), TaskRunError>> + Send;

    fn clock(&self) -> &Self::Clock;
}

pub struct TaskRun<B> {
    pub backend: B,
}

impl<B: Backend> TaskRun<B> {
    fn invocation<'a>(
        &'a self,
        request: &'a HandlerRequest,
        ecs: &'a B::Ecs,
        store: &'a B::Store,
    ) -> Invocation<'a, B::Ecs, B::Store, B::Clock> {
        let clock = self.backend.clock();
        Invocation {
            request,
            ecs,
            store,
            clock,
            budget: Budget::new(clock.now(), request.deadline.map(epoch_seconds)),
        }
    }
}

fn span(request: &HandlerRequest) -> tracing::Span {
    tracing::info_span!(
        "taskrun",
        action = request.action.as_str(),
        resumed = request.callback_context.is_some()
    )
}

impl<B: Backend> Resource for TaskRun<B> {
    type Error = TaskRunError;

    async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, TaskRunError> {
        let (ecs, store) = self.backend.connect(request).await?;
        self.invocation(request, &ecs, &store)
            .create()
            .instrument(span(request))
            .await
    }

    async fn read(&self, request: &HandlerRequest) -> Result<ProgressEvent, TaskRunError> {
        let (ecs, store) = self.backend.connect(request).await?;
        self.invocation(request, &ecs, &store)
            .read()
            .instrument(span(request))
            .await
    }

    async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, TaskRunError> {
        let (ecs, store) = self.backend.connect(request).await?;
        self.invocation(request, &ecs, &store)
            .update()
            .instrument(span(request))
            .await
    }

    async fn delete(&self, request: &HandlerRequest) -> Result<ProgressEvent, TaskRunError> {
        let (ecs, store) = self.backend.connect(request).await?;
        self.invocation(request, &ecs, &store)
            .delete()
            .instrument(span(request))
            .await
    }

    async fn list(&self, request: &HandlerRequest) -> Result<ProgressEvent, TaskRunError> {
        let (ecs, store) = self.backend.connect(request).await?;
        self.invocation(request, &ecs, &store)
            .list()
            .instrument(span(request))
            .await
    }
}
