use std::process::ExitCode;

fn main() -> ExitCode {
    handler_kit::lambda::main(
        service_restart::services_sdk::SERVICE_RESTART,
        service_restart::TYPE_NAME,
        "servicerestart-bootstrap is the Org::ECS::ServiceRestart resource handler: it runs in \
         AWS Lambda, started by the CloudFormation registry. To test it, run `make test` \
         (see README.md).",
    )
}
