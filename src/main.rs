use std::process::ExitCode;

fn main() -> ExitCode {
    handler_kit::lambda::main(
        taskrun::backend::TASK_RUN,
        taskrun::TYPE_NAME,
        "bootstrap is the Org::ECS::TaskRun resource handler: it runs in AWS Lambda, \
         started by the CloudFormation registry. To watch it work locally run `make demo`; \
         to test it, `make test` (see README.md).",
    )
}
