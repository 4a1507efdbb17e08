//! The time one invocation may take. The Registry wants every invocation answered within
//! 60 s; long work spans callbacks. An invocation therefore stops starting work well
//! before that, keeps room for its last record write, and gives every call a deadline
//! it must return by.

/// The Registry's limit for one invocation.
pub const REGISTRY_LIMIT_SECONDS: f64 = 60.0;
/// Answer this long before the limit (or the Lambda deadline, if that comes first).
pub const SAFETY_SECONDS: f64 = 5.0;
/// The seconds of each handler operation that CloudFormation does not bill by the second
/// ("AWS CloudFormation pricing"). An invocation keeps watching tasks within them before it
/// answers IN_PROGRESS: its last wait ends [`MIN_CALL_SECONDS`] before, so that the look
/// after it (and the answer) fall inside too.
pub const WAIT_WINDOW_SECONDS: f64 = 30.0;
/// Kept free at the end of an invocation for the last record write.
pub const PERSIST_ROOM_SECONDS: f64 = 5.0;
/// A call is not started with less than this left before its deadline.
pub const MIN_CALL_SECONDS: f64 = 2.0;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    pub started: f64,
    /// The invocation has answered by then.
    pub answer_by: f64,
    wait_until: f64,
}

impl Budget {
    /// `lambda_deadline`: when the Lambda runtime will end the invocation, if known.
    pub fn new(now: f64, lambda_deadline: Option<f64>) -> Self {
        let limit = lambda_deadline.map_or(now + REGISTRY_LIMIT_SECONDS, |d| {
            d.min(now + REGISTRY_LIMIT_SECONDS)
        });
        let answer_by = limit - SAFETY_SECONDS;
        Self {
            started: now,
            answer_by,
            wait_until: (now + WAIT_WINDOW_SECONDS - MIN_CALL_SECONDS)
                .min(answer_by - PERSIST_ROOM_SECONDS - MIN_CALL_SECONDS),
        }
    }

    /// When a call made on the run's tasks must have returned.
    pub fn call_deadline(&self) -> f64 {
        self.answer_by - PERSIST_ROOM_SECONDS
    }

    /// When a record write must have returned.
    pub fn persist_deadline(&self) -> f64 {
        self.answer_by
    }

    /// Whether there is room to start another call now.
    pub fn may_act(&self, now: f64) -> bool {
        now + MIN_CALL_SECONDS <= self.call_deadline()
    }

    /// Whether the invocation may wait `seconds` and still look again.
    pub fn may_wait(&self, now: f64, seconds: f64) -> bool {
        now + seconds <= self.wait_until
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invocation_answers_well_within_the_limit() {
        let budget = Budget::new(1000.0, None);
        assert_eq!(budget.answer_by, 1055.0);
        assert_eq!(budget.call_deadline(), 1050.0);
        // Waits end 2 s inside the 30 unbilled seconds: room for the look after them.
        assert!(budget.may_wait(1000.0, 28.0));
        assert!(!budget.may_wait(1000.0, 28.5));
        assert!(budget.may_act(1048.0));
        assert!(!budget.may_act(1048.5));
    }

    #[test]
    fn a_nearer_lambda_deadline_wins() {
        let budget = Budget::new(1000.0, Some(1020.0));
        assert_eq!(budget.answer_by, 1015.0);
        assert!(
            !budget.may_wait(1000.0, 10.0),
            "no wait past the room for the last write"
        );
        assert!(budget.may_wait(1000.0, 8.0));
        let late = Budget::new(1000.0, Some(1004.0));
        assert!(!late.may_act(1000.0), "too late to start anything");
    }
}
