//! Errors of a reconcile, with a bounded category for metrics and logs.

/// What went wrong in one reconcile.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A Kubernetes API request failed.
    #[error("{action}: {source}")]
    Kube {
        /// What the provisioner was doing, e.g. `applying StatefulSet demo/db`.
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
    /// The operating system's random number generator failed.
    #[error("cannot generate a password: {0}")]
    Random(String),
    /// The controller's watch caches are not (yet) usable.
    #[error("the watch caches are not ready: {0}")]
    CacheUnavailable(String),
}

impl Error {
    /// Wraps a client error with what the provisioner was doing.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Self::Kube {
            action: action.into(),
            source,
        }
    }

    /// A bounded label for the `category` of the error metric.
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

    #[test]
    fn categories_are_bounded() {
        let table = [
            (409, "conflict"),
            (404, "not_found"),
            (403, "forbidden"),
            (422, "invalid"),
            (500, "api_server"),
            (429, "throttled"),
        ];
        for (code, category) in table {
            assert_eq!(api_error(code).category(), category, "{code}");
        }
        assert!(api_error(409).is_conflict());
        assert_eq!(Error::Random("x".into()).category(), "random");
    }
}
