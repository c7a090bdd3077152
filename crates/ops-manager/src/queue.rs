//! Queueing of requests for one database (reference §5.3), decided from the request objects alone
//! so that it holds across restarts and with several ops-manager replicas (pure).
//!
//! - A Progressing request always continues (not decided here).
//! - Of several not-yet-started requests of the same type for the same database only the newest
//!   survives; the others are Skipped.
//! - At most one request per database is Progressing; among the survivors the oldest runs first.
//! - "Newer" and "older" compare creation time, ties broken by name.

use api::ops::{OpsRequestPhase, OpsRequestType};
use k8s_openapi::jiff::Timestamp;

use crate::model::{PeerRequest, RequestView};

/// What a not-yet-started request should do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueueDecision {
    /// Start now.
    Run,
    /// A newer request of the same type exists: become Skipped.
    Skip {
        /// The newest request of the same type.
        newer: String,
        /// Its creation time.
        at: Timestamp,
    },
    /// Wait for another request.
    Wait {
        /// The request waited for.
        on: String,
        /// Why.
        why: String,
    },
}

fn waiting(phase: Option<OpsRequestPhase>) -> bool {
    matches!(phase, None | Some(OpsRequestPhase::Pending))
}

/// Decides for `request` (Pending or without phase) given the other requests of the same kind for
/// the same database.
pub fn decide(request: &RequestView, peers: &[PeerRequest]) -> QueueDecision {
    let key = |created: &Timestamp, name: &str| (*created, name.to_owned());
    let mine = key(&request.created, &request.name);
    let newest_same_type = peers
        .iter()
        .filter(|p| waiting(p.phase) && p.op_type == request.op_type)
        .filter(|p| key(&p.created, &p.name) > mine)
        .max_by_key(|p| key(&p.created, &p.name));
    if let Some(newer) = newest_same_type {
        return QueueDecision::Skip {
            newer: newer.name.clone(),
            at: newer.created,
        };
    }
    if let Some(running) = peers
        .iter()
        .filter(|p| p.phase == Some(OpsRequestPhase::Progressing))
        .min_by_key(|p| key(&p.created, &p.name))
    {
        return QueueDecision::Wait {
            on: running.name.clone(),
            why: format!("{} is Progressing", running.name),
        };
    }
    // A waiting peer survives when no waiting request of its type (this one included) is newer.
    let survives = |p: &PeerRequest| {
        let pk = key(&p.created, &p.name);
        let newer_peer = peers
            .iter()
            .any(|q| waiting(q.phase) && q.op_type == p.op_type && key(&q.created, &q.name) > pk);
        let newer_self = request.op_type == p.op_type && mine > pk;
        !newer_peer && !newer_self
    };
    if let Some(older) = peers
        .iter()
        .filter(|p| waiting(p.phase) && key(&p.created, &p.name) < mine && survives(p))
        .min_by_key(|p| key(&p.created, &p.name))
    {
        return QueueDecision::Wait {
            on: older.name.clone(),
            why: format!("the older request {} runs first", older.name),
        };
    }
    QueueDecision::Run
}

/// KubeDB's Skipped message.
pub fn skipped_message(
    namespace: &str,
    newer: &str,
    kind: &str,
    op_type: OpsRequestType,
    at: Timestamp,
) -> String {
    format!("skipped as {namespace}/{newer} is the most updated {kind} of type {op_type} at {at}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{at, request};
    use OpsRequestPhase::*;
    use OpsRequestType::*;

    fn peer(
        name: &str,
        secs: i64,
        op_type: OpsRequestType,
        phase: Option<OpsRequestPhase>,
    ) -> PeerRequest {
        PeerRequest {
            name: name.into(),
            created: at(secs),
            op_type,
            phase,
        }
    }

    fn run(me: (&str, i64), peers: &[PeerRequest]) -> QueueDecision {
        decide(&request(me.0, me.1), peers)
    }

    #[test]
    fn queue_table() {
        type Case = (
            &'static str,
            (&'static str, i64),
            Vec<PeerRequest>,
            QueueDecision,
        );
        let cases: Vec<Case> = vec![
            ("alone", ("b", 10), vec![], QueueDecision::Run),
            (
                "newer of the same type skips me",
                ("a", 10),
                vec![
                    peer("b", 20, UpdateVersion, Some(Pending)),
                    peer("c", 30, UpdateVersion, None),
                ],
                QueueDecision::Skip {
                    newer: "c".into(),
                    at: at(30),
                },
            ),
            (
                "ties broken by name",
                ("a", 10),
                vec![peer("b", 10, UpdateVersion, Some(Pending))],
                QueueDecision::Skip {
                    newer: "b".into(),
                    at: at(10),
                },
            ),
            (
                "a finished newer one does not skip me",
                ("a", 10),
                vec![peer("b", 20, UpdateVersion, Some(Failed))],
                QueueDecision::Run,
            ),
            (
                "one Progressing blocks",
                ("b", 20),
                vec![peer("a", 10, UpdateVersion, Some(Progressing))],
                QueueDecision::Wait {
                    on: "a".into(),
                    why: "a is Progressing".into(),
                },
            ),
            (
                "a newer Progressing one of another type blocks too",
                ("a", 10),
                vec![peer("b", 20, Restart, Some(Progressing))],
                QueueDecision::Wait {
                    on: "b".into(),
                    why: "b is Progressing".into(),
                },
            ),
            (
                "older survivor of another type runs first",
                ("b", 20),
                vec![peer("a", 10, Restart, Some(Pending))],
                QueueDecision::Wait {
                    on: "a".into(),
                    why: "the older request a runs first".into(),
                },
            ),
            (
                "older request that I supersede does not block me",
                ("b", 20),
                vec![peer("a", 10, UpdateVersion, Some(Pending))],
                QueueDecision::Run,
            ),
            (
                "older request superseded by a third does not block me",
                ("b", 20),
                vec![
                    peer("a", 10, Restart, Some(Pending)),
                    peer("c", 30, Restart, Some(Pending)),
                ],
                QueueDecision::Run,
            ),
        ];
        for (what, me, peers, expected) in cases {
            assert_eq!(run(me, &peers), expected, "{what}");
        }
    }

    #[test]
    fn three_pending_leave_the_newest() {
        let all = [("r1", 1), ("r2", 2), ("r3", 3)];
        let decisions: Vec<bool> = all
            .iter()
            .map(|(name, secs)| {
                let peers: Vec<PeerRequest> = all
                    .iter()
                    .filter(|(n, _)| n != name)
                    .map(|(n, s)| peer(n, *s, UpdateVersion, Some(Pending)))
                    .collect();
                matches!(run((name, *secs), &peers), QueueDecision::Skip { .. })
            })
            .collect();
        assert_eq!(decisions, [true, true, false]);
    }

    #[test]
    fn skipped_message_names_the_newer_request() {
        let msg = skipped_message("demo", "r3", "MSSQLServerOpsRequest", UpdateVersion, at(0));
        assert_eq!(
            msg,
            "skipped as demo/r3 is the most updated MSSQLServerOpsRequest of type UpdateVersion at 1970-01-01T00:00:00Z"
        );
    }
}
