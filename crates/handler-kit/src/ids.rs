//! Identifiers derived from the request, so that CloudFormation delivering the same
//! invocation again lands on the same run and never starts anything twice.

use sha2::{Digest, Sha256};

pub fn digest_hex(parts: &[&str], len: usize) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part.as_bytes());
        // A separator that cannot appear inside the parts keeps ("ab","c") and ("a","bc") apart.
        hasher.update([0u8]);
    }
    let hex: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    hex[..len.min(hex.len())].to_string()
}

/// The primary identifier of a new resource: the logical ID (readable in the console, and
/// wherever the Id is shown again, e.g. as an ECS task's `startedBy`) and a digest of stack,
/// logical ID and request token; `fallback` (the type's name) is the readable part when
/// the logical ID has none. At most 36 characters, which is also ECS's limit for
/// `startedBy`.
pub fn resource_id(
    fallback: &str,
    stack_id: Option<&str>,
    logical_id: Option<&str>,
    token: Option<&str>,
) -> String {
    let readable: String = logical_id
        .unwrap_or(fallback)
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(19)
        .collect();
    let readable = if readable.is_empty() {
        fallback.to_string()
    } else {
        readable
    };
    let digest = digest_hex(
        &[
            stack_id.unwrap_or_default(),
            logical_id.unwrap_or_default(),
            token.unwrap_or_default(),
        ],
        16,
    );
    format!("{readable}-{digest}")
}

/// RunTask's `clientToken` for one batch of one run: the same for a redelivered
/// invocation, different for every batch and every run.
pub fn client_token(run_id: &str, run_token: &str, batch: usize) -> String {
    digest_hex(&[run_id, run_token, &batch.to_string()], 32)
}

/// The tag value that marks the tasks of one StartTask attempt of one run.
pub fn attempt_tag(run_id: &str, run_token: &str, attempt: u32) -> String {
    digest_hex(&[run_id, run_token, "start-task", &attempt.to_string()], 32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_are_deterministic_and_distinct() {
        let id = |stack, logical, token| resource_id("Widget", stack, logical, token);
        let a = id(Some("arn:stack/1"), Some("Migrate"), Some("tok"));
        assert_eq!(a, id(Some("arn:stack/1"), Some("Migrate"), Some("tok")));
        assert!(
            a.starts_with("Migrate-") && a.len() == "Migrate-".len() + 16,
            "{a}"
        );
        assert_ne!(a, id(Some("arn:stack/2"), Some("Migrate"), Some("tok")));
        assert_ne!(a, id(Some("arn:stack/1"), Some("Migrate"), Some("tok2")));
        let long = id(None, Some("AVeryLongLogicalIdThatGoesOnAndOn"), None);
        assert!(long.len() <= 36, "{long}");
        assert!(id(None, None, None).starts_with("Widget-"));
        assert!(id(None, Some("---"), None).starts_with("Widget-"));
    }

    #[test]
    fn client_tokens_differ_per_batch_and_run() {
        let t0 = client_token("id", "tok", 0);
        assert_eq!(t0, client_token("id", "tok", 0));
        assert_ne!(t0, client_token("id", "tok", 1));
        assert_ne!(t0, client_token("id", "tok2", 0));
        assert!(t0.len() <= 64);
    }
}
