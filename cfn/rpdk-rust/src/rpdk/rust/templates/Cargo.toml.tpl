# @TYPE_NAME@: a CloudFormation Registry resource type whose handler is this Rust binary.
# Written by `cfn init` (the rust plugin of the CloudFormation CLI).
[package]
name = "@PACKAGE@"
version = "0.1.0"
edition = "2021"
rust-version = "1.94"
description = "@TYPE_NAME@: a CloudFormation Registry resource type"
publish = false

# The handler. `cfn submit` builds it (settings.binary in .rpdk-config names it) and
# packages it as `bootstrap`, the executable the provided.al2023 runtime starts.
[[bin]]
name = "@BINARY@"
path = "src/main.rs"

[dependencies]
@KIT_DEPENDENCIES@
serde = { version = "1", features = ["derive"] }
serde_json = "1"

[dev-dependencies]
tokio = { version = "1", features = ["macros", "rt"] }

# A workspace of its own, also when the project sits inside another Cargo workspace (remove
# this table to make it a member of one; its [profile.dist] then goes to that workspace).
[workspace]

# The profile `cfn submit` builds the handler with (settings.cargoProfile): small, and a
# panic unwinds into a FAILED progress event instead of killing the Lambda function.
[profile.dist]
inherits = "release"
lto = true
codegen-units = 1
opt-level = "z"
strip = true
panic = "unwind"
