use std::process::ExitCode;

use taskrun::backend::AwsBackend;
use taskrun::resource::TaskRun;

fn main() -> ExitCode {
    handler_kit::lambda::main(
        TaskRun {
            backend: AwsBackend,
        },
        taskrun::TYPE_NAME,
        "bootstrap is the Org::ECS::TaskRun resource handler: it runs in AWS Lambda, \
         started by the CloudFormation registry. To watch it work locally run `make demo`; \
         to test it, `make test` (see README.md).",
    )
}
