//! The tags of a run's tasks: the TaskRun's own `Tags`, then as many of the stack's as
//! ECS takes.

use std::collections::BTreeMap;

use crate::model::ResourceModel;
use crate::schema::ecs_accepts_tag;

/// ECS's limit of tags per task: "Maximum number of tags per resource - 50" (ECS API
/// Reference, RunTask, `tags`). Tags ECS adds itself (`aws:ecs:*`, with
/// EnableECSManagedTags) do not count.
pub const MAX_TASK_TAGS: usize = 50;

/// The tags of a run's tasks, and the stack tags left off them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TaskTags {
    pub tags: Vec<(String, String)>,
    /// Stack tags ECS would refuse or that did not fit, each with why (keys only: a value
    /// could be anything).
    pub left_off: Vec<String>,
}

/// The tags of every task: the TaskRun's own `Tags`, then as many of the stack's as ECS
/// takes. CloudFormation stack tags have no character rule of ECS's ("Key: 1-128, Value:
/// 1-256", CloudFormation API Reference, "Tag"), so a stack tag ECS would refuse (another
/// character, a key or value beginning with `aws:`, too long) is left off rather than fail
/// every RunTask; so are the stack tags beyond ECS's 50 tags per task, less `reserved`
/// (StartTask's attempt tag), the TaskRun's own tags first. The stack's come in key order,
/// so the same stack tags are kept every time.
pub fn task_tags(
    model: &ResourceModel,
    stack_tags: Option<&BTreeMap<String, String>>,
    reserved: usize,
) -> TaskTags {
    let own: BTreeMap<String, String> = model
        .tags
        .iter()
        .flatten()
        .filter(|t| !is_reserved(&t.key))
        .map(|t| (t.key.clone(), t.value.clone()))
        .collect();
    let mut tags: Vec<(String, String)> = own.clone().into_iter().collect();
    let room = MAX_TASK_TAGS.saturating_sub(reserved);
    let mut left_off = Vec::new();
    for (key, value) in stack_tags.into_iter().flatten() {
        if own.contains_key(key) {
            continue;
        }
        // CloudFormation passes its own aws:cloudformation:* tags along: ECS reserves them.
        if is_reserved(key) {
            continue;
        }
        if !ecs_accepts_tag(key, value) {
            left_off.push(format!(
                "{}: ECS does not accept it (tag keys 1-128 and values 0-256 characters of letters, digits, spaces and _ . : / = + - @, not beginning with aws:)",
                printable(key)
            ));
            continue;
        }
        if tags.len() >= room {
            left_off.push(format!(
                "{}: a task takes at most {MAX_TASK_TAGS} tags",
                printable(key)
            ));
            continue;
        }
        tags.push((key.clone(), value.clone()));
    }
    TaskTags { tags, left_off }
}

/// ECS API Reference, RunTask, `tags`: "Do not use aws:, AWS:, or any upper or lowercase
/// combination of such as a prefix for either keys or values as it is reserved for AWS use."
pub fn is_reserved(text: &str) -> bool {
    text.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("aws:"))
}

/// A key as a log line may show it: at most 64 characters, control characters dropped.
fn printable(text: &str) -> String {
    let shown: String = text.chars().filter(|c| !c.is_control()).take(64).collect();
    format!("{shown:?}")
}
