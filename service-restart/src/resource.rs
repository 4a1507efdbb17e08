//! `Org::ECS::ServiceRestart` as a [`cfn_protocol::Resource`]: per request, a [`Backend`]
//! gives the ECS gateway and the record store (acting with the caller's credentials).

use std::future::Future;

use cfn_protocol::{HandlerRequest, ProgressEvent, Resource};
use handler_kit::budget::Budget;
use handler_kit::clock::{epoch_seconds, Clock};
use handler_kit::store::ParameterStore;
use tracing::Instrument;

use crate::error::RestartError;
use crate::handlers::Env;
use crate::services::Services;

pub trait Backend: Sync {
    type Services: Services + Send + Sync;
    type Store: ParameterStore + Send + Sync;
    type Clock: Clock;

    fn connect(
        &self,
        request: &HandlerRequest,
    ) -> impl Future<Output = Result<(Self::Services, Self::Store), RestartError>> + Send;

    fn clock(&self) -> &Self::Clock;
}

pub struct ServiceRestart<B> {
    pub backend: B,
}

impl<B: Backend> ServiceRestart<B> {
    fn env<'a>(
        &'a self,
        request: &'a HandlerRequest,
        services: &'a B::Services,
        store: &'a B::Store,
    ) -> Env<'a, B::Services, B::Store, B::Clock> {
        let clock = self.backend.clock();
        Env {
            request,
            services,
            store,
            clock,
            budget: Budget::new(clock.now(), request.deadline.map(epoch_seconds)),
        }
    }
}

fn span(request: &HandlerRequest) -> tracing::Span {
    tracing::info_span!(
        "servicerestart",
        action = request.action.as_str(),
        resumed = request.callback_context.is_some()
    )
}

impl<B: Backend> Resource for ServiceRestart<B> {
    type Error = RestartError;

    async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, RestartError> {
        let (services, store) = self.backend.connect(request).await?;
        self.env(request, &services, &store)
            .create()
            .instrument(span(request))
            .await
    }

    async fn read(&self, request: &HandlerRequest) -> Result<ProgressEvent, RestartError> {
        let (services, store) = self.backend.connect(request).await?;
        self.env(request, &services, &store)
            .read()
            .instrument(span(request))
            .await
    }

    async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, RestartError> {
        let (services, store) = self.backend.connect(request).await?;
        self.env(request, &services, &store)
            .update()
            .instrument(span(request))
            .await
    }

    async fn delete(&self, request: &HandlerRequest) -> Result<ProgressEvent, RestartError> {
        let (services, store) = self.backend.connect(request).await?;
        self.env(request, &services, &store)
            .delete()
            .instrument(span(request))
            .await
    }

    async fn list(&self, request: &HandlerRequest) -> Result<ProgressEvent, RestartError> {
        let (services, store) = self.backend.connect(request).await?;
        self.env(request, &services, &store)
            .list()
            .instrument(span(request))
            .await
    }
}
