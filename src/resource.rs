//! `Org::ECS::TaskRun` as a [`cfn_protocol::Resource`]: the kit's
//! [`ResourceType`](handler_kit::resource::ResourceType) over TaskRun's records, failures
//! and handlers (the handlers are in `handlers`).

use cfn_protocol::HandlerRequest;
use handler_kit::resource::{ResourceKind, ResourceType};
use serde_json::Value;

use crate::error::RunFailure;
use crate::record::RunRecord;

/// The resource type `Org::ECS::TaskRun`, as the kit knows it.
pub enum TaskRunType {}

/// TaskRun over the backend `B` its requests' ECS, store and clock come from.
pub type TaskRun<B> = ResourceType<B, TaskRunType>;

impl ResourceKind for TaskRunType {
    type Own = RunFailure;
    type Record = RunRecord;
    const PARAMETER_PATH: &'static str = crate::store::PARAMETER_PATH;
    const WORK: &'static str = "run";
    const LIST_PAGE_SIZE: u32 = crate::store::LIST_PAGE_SIZE;

    fn model(record: &RunRecord) -> Value {
        record.model()
    }

    fn span(request: &HandlerRequest) -> tracing::Span {
        handler_kit::action_span!("taskrun", request)
    }
}
