# @TYPE_NAME@

A CloudFormation Registry resource type whose handler is a Rust binary, scaffolded by
`cfn init` with the rust plugin. As scaffolded, a resource is a record of its properties
in SSM Parameter Store (the parameter `@RECORD_PATH@/<Id>`): CREATE writes it, READ reads
it, UPDATE rewrites it, DELETE removes it, LIST lists them. Make it yours from there.

| file | what it is |
| --- | --- |
| `schema.json` | the resource schema (`@HYPHENATED@.json`, the name `cfn` reads, is a link to it) |
| `src/resource.rs` | the handlers: one method per action of the `cfn_protocol::Resource` trait |
| `src/main.rs` | the binary: `handler_kit::lambda::main` runs the handlers as a Lambda function |
| `inputs/` | the properties `cfn test` creates, updates and (invalid) refuses |
| `.rpdk-config` | the plugin's settings: `binary` (`@BINARY@`), `cargoProfile`, `architecture`, `recordParameterPath` |
| `resource-role.yaml`, `docs/` | written by `cfn generate` from the schema |

The handler is built on two crates: `cfn-protocol` (the Registry's wire format: the
request, progress events, error codes, and the dispatch from a raw event to a progress
event, panics included) and `handler-kit` (records in a parameter store, time budgets,
AWS clients acting with the caller's credentials, provider logs, the Lambda entry
point). @KIT_NOTE@

## Build and test

```sh
cargo build                 # the handler, target/debug/@BINARY@
cargo test                  # the handlers over an in-memory parameter store
cfn validate                # the schema
cfn generate                # resource-role.yaml and docs/ after a schema change
```

`cfn test` runs the Registry's contract tests against the handler behind a Lambda
Invoke API, for example with the binary in `sam local start-lambda`, or fully offline
with the `scripts/cfn-test.sh --project DIR` of the repository the plugin comes from
(a local AWS emulator and a local Lambda in front of the binary):

```sh
TASKRUN_BINARY=$PWD/target/debug/@BINARY@ bash <repository>/scripts/cfn-test.sh --project $PWD
```

## Package and register

```sh
cfn submit --dry-run        # builds with cargo lambda (profile dist), checks and packs @HYPHENATED@.zip
cfn submit                  # registers the type in the account and region of your credentials
```

The package holds `handler.zip`: the binary as `bootstrap`, built for x86_64 and the
glibc of the `provided.al2023` runtime (`cargo lambda` and its zig linker:
`pip install cargo-lambda`).
