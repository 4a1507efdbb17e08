//! The handler binary of @TYPE_NAME@: the Lambda runtime hands each event to
//! `cfn_protocol`'s dispatch (decoding, routing by action, errors and panics turned into
//! progress events), which calls the handlers of `resource.rs` over the model of
//! `model.rs`.

use std::process::ExitCode;

mod model;
mod resource;

fn main() -> ExitCode {
    handler_kit::lambda::main(
        resource::Handler,
        resource::TYPE_NAME,
        "@BINARY@ is the @TYPE_NAME@ resource handler: it runs in AWS Lambda, started by \
         the CloudFormation registry. To test it, run `cfn test` (see README.md).",
    )
}
