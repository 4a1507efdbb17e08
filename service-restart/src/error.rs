//! Every way a ServiceRestart handler can fail, and its Registry code, in one place.

use cfn_protocol::HandlerErrorCode;
use handler_kit::failure::{Failure, OwnFailure, Unsuccessful};

use crate::machine::Ending;

/// Every way a ServiceRestart handler can fail: the failures every type shares, and
/// [`GaveUp`], its own.
pub type RestartError = Failure<GaveUp>;

/// A passing fault went on until the operation's give-up time.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct GaveUp(pub String);

impl OwnFailure for GaveUp {
    const NOUN: &'static str = "ServiceRestart";
    const RECORD: &'static str = "the record";

    /// Never a retriable code: CloudFormation answers one by starting the operation over
    /// ("Resource type handler error codes": NetworkFailure, Throttling and
    /// ServiceInternalError are "Type: Retriable"), which here is restarting the service
    /// again.
    fn code(&self) -> HandlerErrorCode {
        HandlerErrorCode::NotStabilized
    }
}

/// The code of a restart that ended without success: never one CloudFormation retries.
pub fn ending_code(ending: Ending) -> HandlerErrorCode {
    handler_kit::failure::ending_code(match ending {
        Ending::TimedOut => Unsuccessful::TimedOut,
        Ending::Rejected { fault } => Unsuccessful::Rejected(fault),
        _ => Unsuccessful::Failed,
    })
}
