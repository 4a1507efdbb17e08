use std::process::ExitCode;

use service_restart::resource::ServiceRestart;
use service_restart::services_sdk::AwsBackend;

fn main() -> ExitCode {
    handler_kit::lambda::main(
        ServiceRestart {
            backend: AwsBackend,
        },
        service_restart::TYPE_NAME,
        "servicerestart-bootstrap is the Org::ECS::ServiceRestart resource handler: it runs in \
         AWS Lambda, started by the CloudFormation registry. To test it, run `make test` \
         (see README.md).",
    )
}
