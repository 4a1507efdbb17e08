//! The durable record of a ServiceRestart: its properties, its latest restart, and the
//! fingerprint of the last restart that succeeded.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::fingerprint::Fingerprint;
use crate::machine::{Ending, Phase, Restart};
use crate::model::READ_ONLY;

pub const PARAMETER_PATH: &str = "/org-ecs-servicerestart/runs";
pub const LIST_PAGE_SIZE: u32 = 10;
const MAX_RECORD_BYTES: usize = 8000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestartRecord {
    pub version: u32,
    pub id: String,
    pub properties: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<Fingerprint>,
    pub restart: Restart,
}

pub fn status(restart: &Restart) -> &'static str {
    match (restart.phase, restart.ending) {
        (Phase::Starting | Phase::Following, _) => "RUNNING",
        (Phase::Ended, Some(Ending::Succeeded)) => "SUCCEEDED",
        (Phase::Ended, Some(Ending::TimedOut)) => "TIMED_OUT",
        (Phase::Ended, Some(Ending::Superseded)) => "SUPERSEDED",
        (Phase::Ended, _) => "FAILED",
    }
}

pub fn without_read_only(properties: &Value) -> Value {
    handler_kit::records::without_keys(properties, &READ_ONLY)
}

/// The resource model: the properties and the restart's outputs.
pub fn model(properties: &Value, id: &str, restart: &Restart) -> Value {
    let mut model = match without_read_only(properties) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    model.insert("Id".into(), Value::String(id.to_string()));
    if let Some(deployment) = &restart.deployment {
        model.insert("DeploymentId".into(), Value::String(deployment.clone()));
    }
    model.insert("Status".into(), Value::String(status(restart).into()));
    if let Some(reason) = &restart.reason {
        model.insert("StatusReason".into(), Value::String(reason.clone()));
    }
    model.insert(
        "StartedAt".into(),
        Value::String(handler_kit::clock::iso8601(restart.started_at)),
    );
    if let Some(finished) = restart.finished_at {
        model.insert(
            "FinishedAt".into(),
            Value::String(handler_kit::clock::iso8601(finished)),
        );
    }
    Value::Object(model)
}

impl RestartRecord {
    pub fn new(id: String, properties: &Value, restart: Restart) -> Self {
        Self {
            version: 1,
            id,
            properties: without_read_only(properties),
            baseline: None,
            restart,
        }
    }

    pub fn model(&self) -> Value {
        model(&self.properties, &self.id, &self.restart)
    }
}

impl handler_kit::records::Record for RestartRecord {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_text(&self) -> Result<String, String> {
        let mut record = self.clone();
        loop {
            let text = serde_json::to_string(&record).map_err(|e| e.to_string())?;
            if text.len() <= MAX_RECORD_BYTES {
                return Ok(text);
            }
            let halved = record
                .restart
                .reason
                .as_mut()
                .is_some_and(handler_kit::records::halve);
            if !halved {
                return Err(format!("the record of {} would take {} bytes, more than the {MAX_RECORD_BYTES} SSM keeps", record.id, text.len()));
            }
        }
    }
}

impl handler_kit::records::Keeps for RestartRecord {
    type Run = Restart;

    fn run(&self) -> &Restart {
        &self.restart
    }

    fn properties(&self) -> &Value {
        &self.properties
    }

    /// A restart that succeeded becomes what the next update compares with.
    fn absorb(&mut self, restart: Restart) {
        if restart.phase == Phase::Ended && restart.ending == Some(Ending::Succeeded) {
            if let Some(fingerprint) = &restart.fingerprint {
                self.baseline = Some(fingerprint.clone());
            }
        }
        self.restart = restart;
    }
}

handler_kit::revised_by_fields!(Restart);
