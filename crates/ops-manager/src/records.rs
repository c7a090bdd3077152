//! Step records kept in condition messages, so that a restarted ops-manager knows which pod
//! incarnation it evicted (and must never evict again) and how many retries a pod has used.
//!
//! The messages keep KubeDB's shape (`evict pod; ConditionStatus:True; PodName:<pod>`) and append
//! `; PodUID:<uid>; Role:<role>` fields.

/// What an `EvictPod--<pod>` condition records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvictRecord {
    /// The pod.
    pub pod: String,
    /// UID of the incarnation that is (being) evicted.
    pub uid: String,
    /// Its role label at the time (empty when none).
    pub role: String,
}

fn field<'a>(message: &'a str, key: &str) -> Option<&'a str> {
    message
        .split("; ")
        .find_map(|part| part.strip_prefix(key)?.strip_prefix(':'))
}

impl EvictRecord {
    /// The condition message.
    pub fn message(&self) -> String {
        format!(
            "evict pod; ConditionStatus:True; PodName:{}; PodUID:{}; Role:{}",
            self.pod, self.uid, self.role
        )
    }

    /// Parses a message written by [`EvictRecord::message`].
    pub fn parse(message: &str) -> Option<Self> {
        Some(Self {
            pod: field(message, "PodName")?.to_owned(),
            uid: field(message, "PodUID")?.to_owned(),
            role: field(message, "Role").unwrap_or_default().to_owned(),
        })
    }
}

/// What the `Retrying` condition records: the latest retry of a failing pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryRecord {
    /// Attempt number (1 = first retry).
    pub attempt: i32,
    /// Retry budget (`spec.maxRetries`).
    pub of: i32,
    /// The pod.
    pub pod: String,
    /// UID of the failing incarnation that is (being) deleted.
    pub uid: String,
    /// Why it failed.
    pub cause: String,
}

impl RetryRecord {
    /// The condition message (the cause goes last: it may contain separators).
    pub fn message(&self) -> String {
        format!(
            "retry {} of {}; PodName:{}; PodUID:{}; Cause:{}",
            self.attempt, self.of, self.pod, self.uid, self.cause
        )
    }

    /// Parses a message written by [`RetryRecord::message`].
    pub fn parse(message: &str) -> Option<Self> {
        let (head, cause) = message.split_once("; Cause:")?;
        let counts = head.split("; ").next()?.strip_prefix("retry ")?;
        let (attempt, of) = counts.split_once(" of ")?;
        Some(Self {
            attempt: attempt.parse().ok()?,
            of: of.parse().ok()?,
            pod: field(head, "PodName")?.to_owned(),
            uid: field(head, "PodUID")?.to_owned(),
            cause: cause.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evict_round_trip() {
        let rec = EvictRecord {
            pod: "db-1".into(),
            uid: "u-1".into(),
            role: "primary".into(),
        };
        let msg = rec.message();
        assert!(
            msg.starts_with("evict pod; ConditionStatus:True; PodName:db-1"),
            "{msg}"
        );
        assert_eq!(EvictRecord::parse(&msg), Some(rec));
        assert_eq!(
            EvictRecord::parse("evict pod; ConditionStatus:True; PodName:db-1"),
            None
        );
    }

    #[test]
    fn retry_round_trip_with_separators_in_cause() {
        let rec = RetryRecord {
            attempt: 2,
            of: 3,
            pod: "db-0".into(),
            uid: "u".into(),
            cause: "container mssql: ImagePullBackOff: a; b".into(),
        };
        assert_eq!(RetryRecord::parse(&rec.message()), Some(rec));
        assert_eq!(
            RetryRecord::parse("retry x of 1; PodName:a; PodUID:b; Cause:c"),
            None
        );
    }
}
