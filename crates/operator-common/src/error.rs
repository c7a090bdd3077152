//! The error model both operators share: a failed Kubernetes API request with what the operator
//! was doing, a failed (de)serialization, and the few process-level failures, each with a bounded
//! [`Error::category`] for metrics and logs.
//!
//! The provisioner's `crate::error::{Error, Result}` are these types. The ops-manager returns them
//! from its reconcile (its error metric has no category label, so only its logs show one).

/// What went wrong in one reconcile.
///
/// The messages are shown to users (the provisioner publishes a Warning Event per distinct
/// message), so they read as sentences about the object, not as debug output.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API request failed.
    #[error("{action}: {source}")]
    Kube {
        /// What the operator was doing, e.g. `applying StatefulSet demo/db`.
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// An object could not be converted to or from JSON.
    #[error("cannot serialize {what}: {source}")]
    Serialization {
        /// What was being converted.
        what: String,
        /// The serde error.
        #[source]
        source: serde_json::Error,
    },
    /// The operating system's random number generator failed (today only while generating a
    /// database password, hence the message).
    #[error("cannot generate a password: {0}")]
    Random(String),
    /// The controller's watch caches are not (yet) usable.
    #[error("the watch caches are not ready: {0}")]
    CacheUnavailable(String),
}

impl Error {
    /// Wraps a client error with what the operator was doing.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// Wraps a serde error with what was being converted.
    pub fn serialization(what: impl Into<String>, source: serde_json::Error) -> Self {
        Self::Serialization {
            what: what.into(),
            source,
        }
    }

    /// A bounded label for the `category` of an error metric (the values are documented in
    /// docs/metrics.md: `conflict`, `not_found`, `forbidden`, `invalid`, `throttled`,
    /// `api_server`, `transport`, `serialization`, `random`, `cache`).
    pub fn category(&self) -> &'static str {
        match self {
            Self::Kube {
                source: kube::Error::Api(status),
                ..
            } => match status.code {
                409 => "conflict",
                404 => "not_found",
                403 => "forbidden",
                422 | 400 => "invalid",
                429 => "throttled",
                _ => "api_server",
            },
            Self::Kube { .. } => "transport",
            Self::Serialization { .. } => "serialization",
            Self::Random(_) => "random",
            Self::CacheUnavailable(_) => "cache",
        }
    }

    /// Whether the error is an optimistic-concurrency conflict (retry soon, not an incident).
    pub fn is_conflict(&self) -> bool {
        self.category() == "conflict"
    }
}

/// Result of a reconcile step.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    fn api_error(code: u16) -> Error {
        let status = kube::core::Status::failure("x", "Reason").with_code(code);
        Error::kube("doing", kube::Error::Api(Box::new(status)))
    }

    fn serde_error() -> serde_json::Error {
        serde_json::from_str::<u8>("x").unwrap_err()
    }

    #[test]
    fn categories_are_bounded() {
        let table = [
            (409, "conflict"),
            (404, "not_found"),
            (403, "forbidden"),
            (400, "invalid"),
            (422, "invalid"),
            (429, "throttled"),
            (500, "api_server"),
            (503, "api_server"),
        ];
        for (code, category) in table {
            assert_eq!(api_error(code).category(), category, "{code}");
            assert_eq!(api_error(code).is_conflict(), code == 409, "{code}");
        }
        let transport = Error::kube("doing", kube::Error::SerdeError(serde_error()));
        assert_eq!(transport.category(), "transport");
        assert_eq!(
            Error::serialization("x", serde_error()).category(),
            "serialization"
        );
        assert_eq!(Error::Random("x".into()).category(), "random");
        assert_eq!(Error::CacheUnavailable("x".into()).category(), "cache");
    }

    #[test]
    fn messages_name_what_was_being_done() {
        let message = api_error(409).to_string();
        assert!(message.starts_with("doing: "), "{message}");
        let message = Error::serialization("StatefulSet demo/db", serde_error()).to_string();
        assert!(
            message.starts_with("cannot serialize StatefulSet demo/db: "),
            "{message}"
        );
        assert_eq!(
            Error::Random("no entropy".into()).to_string(),
            "cannot generate a password: no entropy"
        );
        assert_eq!(
            Error::CacheUnavailable("timed out".into()).to_string(),
            "the watch caches are not ready: timed out"
        );
    }
}
