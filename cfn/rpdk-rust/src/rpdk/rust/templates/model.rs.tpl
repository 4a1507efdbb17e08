//! The resource model of @TYPE_NAME@: the types `cfn generate` writes from schema.json
//! into `model/generated.rs` (rewritten by every `cfn generate`: change the schema, not
//! that file), and here what you add to them, such as defaults. `model/codegen.json`, when
//! present, gives a property another Rust type than the generator's (see the rust plugin's
//! README).

mod generated;

pub use generated::*;
