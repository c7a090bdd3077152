//! Classification of health-check failures, shared by both engines.
//!
//! Driver errors are reduced to a [`FailureKind`] plus a human-readable detail. The mapping from
//! raw codes (I/O error kinds, SQL Server error numbers, MySQL error codes) is kept in pure
//! functions so it can be table-tested without a server.

use std::fmt;
use std::io::ErrorKind;

/// Why a health check failed. The variants are a closed set, suitable as a metric label or a
/// condition reason suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// Nothing listens on the address (TCP RST on connect).
    ConnectionRefused,
    /// The host could not be resolved or reached (DNS, routing).
    Unreachable,
    /// The server closed or reset the connection.
    ConnectionClosed,
    /// The server rejected the credentials.
    AuthenticationFailed,
    /// The login is valid but lacks a privilege the check needs (e.g. to create the
    /// `kubedb_system` database, or to open the requested database).
    PermissionDenied,
    /// The server is up but refuses work: too many connections, shutting down, recovering.
    ServerUnavailable,
    /// A stage did not finish within the configured timeout.
    Timeout,
    /// TLS could not be established, or is required but not supported by this build.
    Tls,
    /// A statement failed with a server error.
    Query,
    /// A statement ran but its result says the database is not healthy.
    UnexpectedResult,
    /// A driver or protocol error that fits none of the above.
    Protocol,
}

impl FailureKind {
    /// A stable CamelCase name.
    pub fn as_str(self) -> &'static str {
        match self {
            FailureKind::ConnectionRefused => "ConnectionRefused",
            FailureKind::Unreachable => "Unreachable",
            FailureKind::ConnectionClosed => "ConnectionClosed",
            FailureKind::AuthenticationFailed => "AuthenticationFailed",
            FailureKind::PermissionDenied => "PermissionDenied",
            FailureKind::ServerUnavailable => "ServerUnavailable",
            FailureKind::Timeout => "Timeout",
            FailureKind::Tls => "Tls",
            FailureKind::Query => "Query",
            FailureKind::UnexpectedResult => "UnexpectedResult",
            FailureKind::Protocol => "Protocol",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            FailureKind::ConnectionRefused => "connection refused",
            FailureKind::Unreachable => "host unreachable",
            FailureKind::ConnectionClosed => "connection closed by the server",
            FailureKind::AuthenticationFailed => "authentication failed",
            FailureKind::PermissionDenied => "permission denied",
            FailureKind::ServerUnavailable => "server unavailable",
            FailureKind::Timeout => "timed out",
            FailureKind::Tls => "TLS error",
            FailureKind::Query => "query failed",
            FailureKind::UnexpectedResult => "unhealthy result",
            FailureKind::Protocol => "protocol error",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A classified failure: the kind and a detail for humans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The category.
    pub kind: FailureKind,
    /// What happened, e.g. the server's error text.
    pub detail: String,
}

impl Failure {
    /// A failure of `kind` with `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.detail.is_empty() {
            f.write_str(self.kind.describe())
        } else {
            write!(f, "{}: {}", self.kind.describe(), self.detail)
        }
    }
}

/// Classifies an I/O error kind seen while connecting or talking to a server.
pub fn classify_io(kind: ErrorKind, detail: &str) -> Failure {
    let failure_kind = match kind {
        ErrorKind::ConnectionRefused => FailureKind::ConnectionRefused,
        ErrorKind::TimedOut => FailureKind::Timeout,
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::UnexpectedEof
        | ErrorKind::NotConnected => FailureKind::ConnectionClosed,
        ErrorKind::HostUnreachable
        | ErrorKind::NetworkUnreachable
        | ErrorKind::NetworkDown
        | ErrorKind::AddrNotAvailable
        | ErrorKind::NotFound => FailureKind::Unreachable,
        // Name resolution failures surface as uncategorised errors with this text.
        _ if detail.contains("lookup address") || detail.contains("Name or service not known") => {
            FailureKind::Unreachable
        }
        _ => FailureKind::Protocol,
    };
    Failure::new(failure_kind, detail)
}

/// Classifies a SQL Server error number (`sys.messages`) raised by the server.
pub fn classify_mssql_server_error(code: u32, message: &str) -> Failure {
    let kind = match code {
        // 18456 login failed; 18452 untrusted domain; 18486 locked out; 18487/18488 password
        // expired / must change; 18470 login disabled.
        18456 | 18452 | 18486 | 18487 | 18488 | 18470 => FailureKind::AuthenticationFailed,
        // 4060 cannot open the requested database; 229/230 permission denied on an object or
        // column; 262 permission denied (e.g. CREATE DATABASE); 916 principal cannot access the
        // database under the current security context.
        4060 | 229 | 230 | 262 | 916 => FailureKind::PermissionDenied,
        // 17142 server paused; 6005 shutdown in progress; 922/926/945 database recovering,
        // suspect or not loaded; 976 AG secondary not readable; 983 AG replica not primary or
        // secondary; 35250 connection to the primary replica not active; 17809 user connection
        // limit reached.
        17142 | 6005 | 922 | 926 | 945 | 976 | 983 | 35250 | 17809 => {
            FailureKind::ServerUnavailable
        }
        _ => FailureKind::Query,
    };
    Failure::new(kind, format!("SQL Server error {code}: {}", message.trim()))
}

/// Classifies a MySQL-protocol server error code (MySQL, MariaDB and SingleStore share them).
pub fn classify_mysql_server_error(code: u16, message: &str) -> Failure {
    let kind = match code {
        // ER_ACCESS_DENIED_ERROR, ER_HOST_NOT_PRIVILEGED, ER_NOT_SUPPORTED_AUTH_MODE,
        // ER_ACCESS_DENIED_NO_PASSWORD_ERROR, ER_MUST_CHANGE_PASSWORD_LOGIN,
        // ER_ACCOUNT_HAS_BEEN_LOCKED.
        1045 | 1130 | 1251 | 1698 | 1862 | 3118 => FailureKind::AuthenticationFailed,
        // ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR,
        // ER_SPECIFIC_ACCESS_DENIED_ERROR.
        1044 | 1142 | 1143 | 1227 => FailureKind::PermissionDenied,
        // ER_CON_COUNT_ERROR, ER_SERVER_SHUTDOWN, ER_HOST_IS_BLOCKED, ER_TOO_MANY_USER_CONNECTIONS,
        // ER_OPTION_PREVENTS_STATEMENT (read-only server), ER_LOCK_WAIT_TIMEOUT.
        1040 | 1053 | 1129 | 1203 | 1290 | 1205 => FailureKind::ServerUnavailable,
        _ => FailureKind::Query,
    };
    Failure::new(kind, format!("error {code}: {}", message.trim()))
}

/// Replaces every occurrence of `secret` in `text` with `<redacted>`. An empty secret leaves the
/// text unchanged.
pub fn redact(text: &str, secret: &str) -> String {
    if secret.is_empty() {
        text.to_owned()
    } else {
        text.replace(secret, "<redacted>")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_kinds_map_to_failure_kinds() {
        let cases = [
            (
                ErrorKind::ConnectionRefused,
                "Connection refused (os error 111)",
                FailureKind::ConnectionRefused,
            ),
            (ErrorKind::TimedOut, "timed out", FailureKind::Timeout),
            (
                ErrorKind::ConnectionReset,
                "reset",
                FailureKind::ConnectionClosed,
            ),
            (
                ErrorKind::UnexpectedEof,
                "eof",
                FailureKind::ConnectionClosed,
            ),
            (ErrorKind::BrokenPipe, "pipe", FailureKind::ConnectionClosed),
            (
                ErrorKind::HostUnreachable,
                "no route",
                FailureKind::Unreachable,
            ),
            (
                ErrorKind::Other,
                "failed to lookup address information: Name or service not known",
                FailureKind::Unreachable,
            ),
            (ErrorKind::Other, "something odd", FailureKind::Protocol),
        ];
        for (kind, detail, want) in cases {
            let got = classify_io(kind, detail);
            assert_eq!(got.kind, want, "{kind:?} {detail}");
            assert_eq!(got.detail, detail);
        }
    }

    #[test]
    fn mssql_error_numbers_are_classified() {
        let cases = [
            (18456, FailureKind::AuthenticationFailed),
            (4060, FailureKind::PermissionDenied),
            (262, FailureKind::PermissionDenied),
            (18488, FailureKind::AuthenticationFailed),
            (922, FailureKind::ServerUnavailable),
            (976, FailureKind::ServerUnavailable),
            (17142, FailureKind::ServerUnavailable),
            (208, FailureKind::Query),
            (3906, FailureKind::Query),
        ];
        for (code, want) in cases {
            assert_eq!(classify_mssql_server_error(code, "x").kind, want, "{code}");
        }
        let f = classify_mssql_server_error(18456, "Login failed for user 'sa'.\n");
        assert_eq!(
            f.detail,
            "SQL Server error 18456: Login failed for user 'sa'."
        );
        assert_eq!(
            f.to_string(),
            "authentication failed: SQL Server error 18456: Login failed for user 'sa'."
        );
    }

    #[test]
    fn mysql_error_codes_are_classified() {
        let cases = [
            (1045, FailureKind::AuthenticationFailed),
            (1044, FailureKind::PermissionDenied),
            (1142, FailureKind::PermissionDenied),
            (1698, FailureKind::AuthenticationFailed),
            (1040, FailureKind::ServerUnavailable),
            (1290, FailureKind::ServerUnavailable),
            (1146, FailureKind::Query),
            (1064, FailureKind::Query),
        ];
        for (code, want) in cases {
            assert_eq!(classify_mysql_server_error(code, "x").kind, want, "{code}");
        }
    }

    #[test]
    fn redact_removes_every_occurrence() {
        assert_eq!(
            redact("user pw s3cr3t and s3cr3t again", "s3cr3t"),
            "user pw <redacted> and <redacted> again"
        );
        assert_eq!(redact("nothing here", "s3cr3t"), "nothing here");
        assert_eq!(redact("empty secret", ""), "empty secret");
    }

    #[test]
    fn failure_display_without_detail_is_the_description() {
        assert_eq!(
            Failure::new(FailureKind::Timeout, "").to_string(),
            "timed out"
        );
        assert_eq!(FailureKind::Timeout.to_string(), "Timeout");
    }
}
