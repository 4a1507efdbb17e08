//! `Org::ECS::ServiceRestart` as a [`cfn_protocol::Resource`]: the kit's
//! [`ResourceType`](handler_kit::resource::ResourceType) over ServiceRestart's records,
//! failures and handlers (the handlers are in `handlers`).

use cfn_protocol::HandlerRequest;
use handler_kit::resource::{ResourceKind, ResourceType};
use serde_json::Value;

use crate::error::GaveUp;
use crate::record::{RestartRecord, LIST_PAGE_SIZE, PARAMETER_PATH};

/// The resource type `Org::ECS::ServiceRestart`, as the kit knows it.
pub enum ServiceRestartType {}

/// ServiceRestart over the backend `B` its requests' ECS, store and clock come from.
pub type ServiceRestart<B> = ResourceType<B, ServiceRestartType>;

impl ResourceKind for ServiceRestartType {
    type Own = GaveUp;
    type Record = RestartRecord;
    const PARAMETER_PATH: &'static str = PARAMETER_PATH;
    const WORK: &'static str = "restart";
    const LIST_PAGE_SIZE: u32 = LIST_PAGE_SIZE;

    fn model(record: &RestartRecord) -> Value {
        record.model()
    }

    fn span(request: &HandlerRequest) -> tracing::Span {
        handler_kit::action_span!("servicerestart", request)
    }
}
