//! @TYPE_NAME@ as a [`cfn_protocol::Resource`]: a resource is one record, its model (the
//! `ResourceModel` `cfn generate` writes from schema.json, see `model.rs`), kept with
//! handler-kit's records in SSM Parameter Store (the SecureString parameter
//! `@RECORD_PATH@/<Id>`), acting with the caller's credentials.
//!
//! CREATE writes the record, READ reads it (NotFound when there is none), UPDATE rewrites
//! it, DELETE removes it and LIST lists them: the least that passes the contract tests
//! (`cfn test`). Replace the record with what your resource type does, and keep what the
//! tests check: READ, UPDATE and DELETE of a resource that does not exist fail with
//! NotFound; every property given comes back unchanged in the model; the model carries
//! the primary identifier (`Id`).

use std::fmt;
use std::sync::OnceLock;

use cfn_protocol::{
    CredentialsProblem, HandlerError, HandlerErrorCode, HandlerRequest, ProgressEvent, Resource,
};
use handler_kit::budget::Budget;
use handler_kit::clock::{epoch_seconds, Clock, SystemClock};
use handler_kit::fault::{fault_code, Fault};
use handler_kit::records::{PutError, Record, Records, Stored};
use handler_kit::schema::Schema;
use handler_kit::ssm::SsmStore;
use handler_kit::store::ParameterStore;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::model::ResourceModel;

pub const TYPE_NAME: &str = "@TYPE_NAME@";
/// Where the records live: settings.recordParameterPath in .rpdk-config, to which
/// `cfn generate` narrows the ssm actions of the execution role (resource-role.yaml).
pub const RECORD_PATH: &str = "@RECORD_PATH@";
/// SSM GetParametersByPath returns at most 10 parameters a call.
const PAGE_SIZE: u32 = 10;
/// The readable part of a new resource's Id when the logical ID gives none.
const ID_FALLBACK: &str = "@ID_FALLBACK@";

/// The resource schema (the one `cfn` reads as @HYPHENATED@.json), compiled once: the
/// properties of CREATE and UPDATE are checked against it.
fn schema() -> Result<&'static Schema, Error> {
    static SCHEMA: OnceLock<Result<Schema, String>> = OnceLock::new();
    SCHEMA
        .get_or_init(|| Schema::compile(include_str!("../schema.json")))
        .as_ref()
        .map_err(|e| Error::Internal(e.clone()))
}

/// What is kept of a resource.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub id: String,
    pub model: ResourceModel,
}

impl Record for Entry {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_text(&self) -> Result<String, String> {
        serde_json::to_string(self).map_err(|e| e.to_string())
    }
}

/// Every way a handler can fail, and its Registry error code.
#[derive(Debug)]
pub enum Error {
    InvalidProperties(Vec<String>),
    NotFound(String),
    Credentials(CredentialsProblem),
    Aws(Fault),
    TooLarge(String),
    Internal(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidProperties(why) => write!(f, "invalid properties: {}", why.join("; ")),
            Self::NotFound(id) => write!(f, "{TYPE_NAME} {id} not found"),
            Self::Credentials(problem) => write!(f, "invalid credentials: {problem}"),
            Self::Aws(fault) => write!(f, "{fault}"),
            Self::TooLarge(why) => write!(f, "{why}"),
            Self::Internal(why) => write!(f, "internal error: {why}"),
        }
    }
}

impl HandlerError for Error {
    fn code(&self) -> HandlerErrorCode {
        match self {
            Self::InvalidProperties(_) | Self::TooLarge(_) => HandlerErrorCode::InvalidRequest,
            Self::NotFound(_) => HandlerErrorCode::NotFound,
            Self::Credentials(_) => HandlerErrorCode::InvalidCredentials,
            Self::Aws(fault) => fault_code(fault.kind),
            Self::Internal(_) => HandlerErrorCode::InternalFailure,
        }
    }
}

impl From<Fault> for Error {
    fn from(fault: Fault) -> Self {
        Self::Aws(fault)
    }
}

impl From<PutError> for Error {
    fn from(error: PutError) -> Self {
        match error {
            PutError::TooLarge(why) => Self::TooLarge(why),
            PutError::Store(fault) => Self::Aws(fault),
        }
    }
}

/// The handlers over any parameter store: SSM in Lambda, handler-kit's `MemoryStore` in
/// the tests below. `by` is when every store call must have returned (epoch seconds).
pub struct Handlers<'a, S> {
    records: Records<'a, S, Entry>,
    by: f64,
}

impl<'a, S: ParameterStore> Handlers<'a, S> {
    pub fn new(store: &'a S, by: f64) -> Self {
        Self {
            records: Records::new(store, RECORD_PATH, PAGE_SIZE),
            by,
        }
    }

    pub async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        // The same for a request CloudFormation delivers again: it lands on the same record.
        let id = handler_kit::ids::resource_id(
            ID_FALLBACK,
            request.stack_id.as_deref(),
            request.request_data.logical_resource_id.as_deref(),
            request.bearer_token.as_deref(),
        );
        let mut model = desired_model(request)?;
        model.id = Some(id.clone());
        self.keep(id, model).await
    }

    pub async fn read(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let id = identifier(request)?;
        match self.records.load(&id, self.by).await? {
            Stored::Record(entry) => Ok(ProgressEvent::success(answer(&entry.model)?)),
            Stored::Absent => Err(Error::NotFound(id)),
            Stored::Unreadable(why) => Err(Error::Internal(format!(
                "the record of {id} cannot be read: {why}"
            ))),
        }
    }

    pub async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let id = identifier(request)?;
        if let Stored::Absent = self.records.load(&id, self.by).await? {
            return Err(Error::NotFound(id));
        }
        let mut model = desired_model(request)?;
        model.id = Some(id.clone());
        self.keep(id, model).await
    }

    pub async fn delete(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let id = identifier(request)?;
        if self.records.delete(&id, self.by).await? {
            Ok(ProgressEvent::deleted())
        } else {
            Err(Error::NotFound(id))
        }
    }

    pub async fn list(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let (entries, next_token) = self
            .records
            .list(request.next_token.as_deref(), self.by)
            .await?;
        let models = entries
            .iter()
            .map(|entry| answer(&entry.model))
            .collect::<Result<_, _>>()?;
        Ok(ProgressEvent::listed(models, next_token))
    }

    /// Writes the record of `id`, and answers with its model.
    async fn keep(&self, id: String, model: ResourceModel) -> Result<ProgressEvent, Error> {
        let entry = Entry { id, model };
        self.records.put(&entry, self.by).await?;
        Ok(ProgressEvent::success(answer(&entry.model)?))
    }
}

/// The desired properties as the model: checked against the schema first, in its types
/// (CloudFormation sends every scalar as a string), and refused with every way they
/// break it.
fn desired_model(request: &HandlerRequest) -> Result<ResourceModel, Error> {
    let properties = schema()?
        .prepare(request.desired_properties())
        .map_err(Error::InvalidProperties)?;
    // serde's message would quote the value; the schema has already named any problem.
    serde_json::from_value(properties).map_err(|_| {
        Error::InvalidProperties(vec!["the properties do not fit the model".to_string()])
    })
}

/// A model as the handlers answer it: the properties given, with native scalars.
fn answer(model: &ResourceModel) -> Result<Value, Error> {
    serde_json::to_value(model).map_err(|e| Error::Internal(e.to_string()))
}

/// The primary identifier of the resource a request is about: a request without one is
/// about no resource there is.
fn identifier(request: &HandlerRequest) -> Result<String, Error> {
    match request.desired_properties().get("Id") {
        Some(Value::String(id)) if !id.is_empty() => Ok(id.clone()),
        _ => Err(Error::NotFound("(without an Id)".to_string())),
    }
}

/// @TYPE_NAME@ in Lambda: per request, the record store in SSM with the caller's
/// credentials, then the action's handler.
pub struct Handler;

impl Handler {
    async fn store(request: &HandlerRequest) -> Result<SsmStore, Error> {
        let config = handler_kit::aws::config_for(request)
            .await
            .map_err(Error::Credentials)?;
        Ok(SsmStore {
            client: handler_kit::aws::ssm_client(&config),
            description: "@TYPE_NAME@ record",
        })
    }

    /// When the store calls of this invocation must have returned.
    fn by(request: &HandlerRequest) -> f64 {
        Budget::new(SystemClock.now(), request.deadline.map(epoch_seconds)).persist_deadline()
    }
}

impl Resource for Handler {
    type Error = Error;

    async fn create(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let store = Self::store(request).await?;
        Handlers::new(&store, Self::by(request))
            .create(request)
            .await
    }

    async fn read(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let store = Self::store(request).await?;
        Handlers::new(&store, Self::by(request)).read(request).await
    }

    async fn update(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let store = Self::store(request).await?;
        Handlers::new(&store, Self::by(request))
            .update(request)
            .await
    }

    async fn delete(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let store = Self::store(request).await?;
        Handlers::new(&store, Self::by(request))
            .delete(request)
            .await
    }

    async fn list(&self, request: &HandlerRequest) -> Result<ProgressEvent, Error> {
        let store = Self::store(request).await?;
        Handlers::new(&store, Self::by(request)).list(request).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cfn_protocol::OperationStatus;
    use handler_kit::store::MemoryStore;
    use serde_json::json;

    fn request(action: &str, token: &str, properties: Value) -> HandlerRequest {
        HandlerRequest::decode(&json!({
            "action": action,
            "bearerToken": token,
            "requestData": {"logicalResourceId": "MyResource", "resourceProperties": properties},
        }))
        .expect("a valid request")
    }

    fn code(result: Result<ProgressEvent, Error>) -> HandlerErrorCode {
        result.expect_err("a failure").code()
    }

    #[tokio::test]
    async fn a_resource_lives_from_create_to_delete() {
        let store = MemoryStore::new();
        let handlers = Handlers::new(&store, f64::MAX);

        let created = handlers
            .create(&request("CREATE", "t1", json!({"Name": "a", "Value": "1"})))
            .await
            .unwrap();
        let model = created.resource_model.unwrap();
        assert_eq!(model["Name"], "a");
        let id = model["Id"].as_str().unwrap().to_string();
        assert!(id.starts_with("MyResource-"), "{id}");

        let read = handlers
            .read(&request("READ", "t2", json!({"Id": id})))
            .await
            .unwrap();
        assert_eq!(read.resource_model.unwrap(), model);

        let updated = handlers
            .update(&request(
                "UPDATE",
                "t3",
                json!({"Id": id, "Name": "a", "Value": "2"}),
            ))
            .await
            .unwrap();
        assert_eq!(updated.resource_model.unwrap()["Value"], "2");

        let listed = handlers
            .list(&request("LIST", "t4", json!({})))
            .await
            .unwrap();
        assert_eq!(listed.resource_models.unwrap().len(), 1);

        let deleted = handlers
            .delete(&request("DELETE", "t5", json!({"Id": id})))
            .await
            .unwrap();
        assert_eq!(deleted.status, OperationStatus::Success);

        let gone = json!({"Id": id, "Name": "a"});
        for action in ["READ", "UPDATE", "DELETE"] {
            let answer = match action {
                "READ" => handlers.read(&request(action, "t6", gone.clone())).await,
                "UPDATE" => handlers.update(&request(action, "t6", gone.clone())).await,
                _ => handlers.delete(&request(action, "t6", gone.clone())).await,
            };
            assert_eq!(code(answer), HandlerErrorCode::NotFound, "{action}");
        }
    }

    #[tokio::test]
    async fn properties_that_break_the_schema_are_refused() {
        let store = MemoryStore::new();
        let handlers = Handlers::new(&store, f64::MAX);
        let answer = handlers
            .create(&request("CREATE", "t1", json!({"Name": ""})))
            .await;
        assert_eq!(code(answer), HandlerErrorCode::InvalidRequest);
        assert!(store.snapshot().is_empty(), "nothing was written");
    }
}
