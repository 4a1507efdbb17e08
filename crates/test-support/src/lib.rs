//! The test kit of this repository's resource types (`taskrun`'s `tests/`,
//! `service-restart/tests/`), written once and generic over the type (closures, the
//! type's `cfn_protocol::Resource`):
//!
//! - [`cfn`]: CloudFormation's side of the protocol: the request envelope (scalars sent as
//!   strings), the callback loop's rules (the callbackContext and the returned model,
//!   `callbackDelaySeconds`), an invocation polled to its end on a virtual clock, unique
//!   names and tokens, the null check every progress event passes;
//! - [`scale`]: many operations at once, played as CloudFormation plays them over the
//!   in-memory twins on one scheduled clock, throttled by the account's token buckets,
//!   and the figures and report lines of a run;
//! - [`props`]: the property runs (how many scenarios, the runner, the progress line);
//! - [`wire`]: every request also made through the real SDK gateways against an HTTP
//!   client that keeps it, and checked as AWS would (`emulator/check_requests.py`).

pub mod cfn;
pub mod props;
pub mod scale;
pub mod wire;
