//! Run records in a parameter store: one SecureString parameter per TaskRun under a
//! fixed path (a run's overrides may hold secrets). The store itself is a port: SSM
//! Parameter Store in production (`handler_kit::ssm`), [`MemoryStore`] in tests.

pub use handler_kit::store::{Injected, MemoryStore, ParameterStore};

use crate::record::RunRecord;

pub const PARAMETER_PATH: &str = "/org-ecs-taskrun/runs";
pub const LIST_PAGE_SIZE: u32 = 10;
/// Where the locks' generations live (`<path>/<name>/<generation>`): under the records'
/// path, so that the execution role's grant on it covers them, and a level deeper, so that
/// a LIST of the records (one level) never reads them.
pub const LOCK_PATH: &str = "/org-ecs-taskrun/runs/locks";

pub fn parameter_name(id: &str) -> String {
    format!("{PARAMETER_PATH}/{id}")
}

pub use handler_kit::records::{is_valid_id, PutError};

/// What a stored parameter held.
pub type Stored = handler_kit::records::Stored<RunRecord>;

/// The run records of a store.
pub type Records<'a, S> = handler_kit::records::Records<'a, S, RunRecord>;

pub fn records<S: ParameterStore>(store: &S) -> Records<'_, S> {
    Records::new(store, PARAMETER_PATH, LIST_PAGE_SIZE)
}

impl handler_kit::records::Record for RunRecord {
    fn id(&self) -> &str {
        &self.id
    }

    fn to_text(&self) -> Result<String, String> {
        self.to_parameter_value()
    }
}

impl handler_kit::records::Keeps for RunRecord {
    type Run = crate::machine::Run;

    fn run(&self) -> &crate::machine::Run {
        &self.run
    }

    fn properties(&self) -> &serde_json::Value {
        &self.properties
    }

    fn absorb(&mut self, run: crate::machine::Run) {
        RunRecord::absorb(self, run);
    }
}

handler_kit::revised_by_fields!(crate::machine::Run);
