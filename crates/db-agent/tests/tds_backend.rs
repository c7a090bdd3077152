//! The tiberius backend against a scripted TDS responder on loopback. No SQL Server can run
//! here, so the responder speaks just enough TDS 7.4 (PRELOGIN without encryption, LOGIN7,
//! SQL batches answered with COLMETADATA/ROW/ERROR/DONE tokens, int, bigint and nvarchar
//! columns) to drive the real tiberius client, and records every batch it receives.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::mssql::SecondaryAccessMode;
use db_agent::mssql::backend::tds::{TdsBackend, TdsTarget};
use db_agent::mssql::backend::{AgConfig, Backend, BackendError, SetupSecrets};
use db_agent::mssql::decide::{InstanceSetup, Role, SyncState};
use db_agent::mssql::tsql::{self, CertificateFiles, ReplicaSpec, SetupNames};
use testkit::tds::{
    Cell, Col, ENCRYPT_NOT_SUP, batch_text, done, error_token, login_ack, prelogin_response,
    read_message, result_set, write_message,
};
use tokio::net::TcpListener;

const PASSWORD: &str = "Sa-S3cret'pw";

/// How the responder answers one batch.
#[derive(Clone)]
enum Reply {
    /// DONE, no result set (DDL).
    Done,
    /// One result set.
    Rows(Vec<(&'static str, Col)>, Vec<Vec<Cell<'static>>>),
    /// An ERROR token with this number.
    Error(u32, &'static str),
    /// No answer at all.
    Hang,
}

/// The LOGIN7 password field, decoded (TDS scrambles it: nibble swap, then XOR 0xA5).
fn login_password(login: &[u8]) -> String {
    let offset = usize::from(u16::from_le_bytes([login[44], login[45]]));
    let chars = usize::from(u16::from_le_bytes([login[46], login[47]]));
    let bytes: Vec<u8> = login[offset..offset + chars * 2]
        .iter()
        .map(|b| {
            let x = b ^ 0xA5;
            x.rotate_left(4)
        })
        .collect();
    let units: Vec<u16> = bytes
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).unwrap()
}

type Script = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// A responder on 127.0.0.1; returns its port and the batches it received.
async fn responder(script: Script, reject_login: bool) -> (u16, Arc<Mutex<Vec<String>>>) {
    let (port, seen, _) = counting_responder(script, reject_login).await;
    (port, seen)
}

/// Same, also counting the connections it accepted.
async fn counting_responder(
    script: Script,
    reject_login: bool,
) -> (u16, Arc<Mutex<Vec<String>>>, Arc<Mutex<usize>>) {
    let connections = Arc::new(Mutex::new(0usize));
    let accepted = connections.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen_by_server = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            *accepted.lock().unwrap() += 1;
            let script = script.clone();
            let seen = seen_by_server.clone();
            tokio::spawn(async move {
                let (kind, _) = read_message(&mut sock).await?;
                assert_eq!(kind, 0x12, "PRELOGIN first");
                write_message(&mut sock, 0x04, &prelogin_response(ENCRYPT_NOT_SUP)).await?;
                let (kind, login) = read_message(&mut sock).await?;
                assert_eq!(kind, 0x10, "LOGIN7 next, in clear text");
                assert_eq!(login_password(&login), PASSWORD);
                if reject_login {
                    let mut p = error_token(18456, 16, "Login failed for user 'sa'.");
                    p.extend(done(true, None));
                    write_message(&mut sock, 0x04, &p).await?;
                    return Ok::<(), std::io::Error>(());
                }
                write_message(&mut sock, 0x04, &login_ack()).await?;
                loop {
                    let (kind, payload) = read_message(&mut sock).await?;
                    assert_eq!(kind, 0x01, "only SQL batches");
                    let sql = batch_text(&payload);
                    seen.lock().unwrap().push(sql.clone());
                    let answer = match script(&sql) {
                        Reply::Hang => std::future::pending().await,
                        Reply::Done => done(false, None),
                        Reply::Rows(columns, rows) => result_set(&columns, &rows),
                        Reply::Error(code, message) => {
                            let mut p = error_token(code, 16, message);
                            p.extend(done(true, None));
                            p
                        }
                    };
                    write_message(&mut sock, 0x04, &answer).await?;
                }
            });
        }
    });
    (port, seen, connections)
}

fn config() -> AgConfig {
    AgConfig {
        ag: "agx".into(),
        replica: ReplicaSpec {
            name: "ag-0".into(),
            endpoint_url: "tcp://ag-0.ag-pods.demo.svc:5022".into(),
            secondary_access: SecondaryAccessMode::Passive,
        },
        names: SetupNames::default(),
        endpoint_port: 5022,
        secrets: SetupSecrets {
            master_key_password: "mk'pw".into(),
            login_password: "login-pw".into(),
            certificate: CertificateFiles::Pfx {
                path: "/var/opt/mssql/endpoint-cert/keystore.p12".into(),
                password: "pfx-pw".into(),
            },
        },
    }
}

fn backend(port: u16) -> TdsBackend {
    TdsBackend::new(
        TdsTarget {
            host: "127.0.0.1".into(),
            port,
            username: "sa".into(),
            password: PASSWORD.into(),
            timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(5),
        },
        config(),
    )
}

fn setup_row(flags: [i64; 8]) -> Reply {
    let names = [
        "hadr_enabled",
        "master_key",
        "login",
        "user",
        "certificate",
        "endpoint",
        "endpoint_started",
        "connect_granted",
    ];
    let mut columns = vec![("server_name", Col::Text)];
    columns.extend(names.iter().map(|n| (*n, Col::Int)));
    let mut row = vec![Cell::Text("ag-0")];
    row.extend(flags.iter().map(|f| Cell::Int(*f)));
    Reply::Rows(columns, vec![row])
}

/// Answers the observation queries for a secondary with two databases.
fn observing(sql: &str) -> Reply {
    let ag = tsql::ag_query("agx");
    if sql == tsql::setup_query(&SetupNames::default()) {
        setup_row([1; 8])
    } else if sql == ag {
        Reply::Rows(
            vec![
                ("sequence_number", Col::BigInt),
                ("required_synchronized_secondaries", Col::Int),
                ("role", Col::Int),
                ("operational_state", Col::Int),
            ],
            vec![vec![
                Cell::Int(4_294_967_301),
                Cell::Int(1),
                Cell::Int(2),
                Cell::Int(2),
            ]],
        )
    } else if sql == tsql::replicas_query("agx") {
        Reply::Rows(
            vec![("replica_server_name", Col::Text)],
            vec![vec![Cell::Text("ag-0")], vec![Cell::Text("ag-1")]],
        )
    } else if sql == tsql::databases_query("agx") {
        Reply::Rows(
            vec![
                ("database_name", Col::Text),
                ("synchronization_state", Col::Int),
                ("is_failover_ready", Col::Int),
                ("is_suspended", Col::Int),
                ("database_state", Col::Int),
                ("lsn_high", Col::BigInt),
                ("lsn_low", Col::BigInt),
            ],
            vec![
                vec![
                    Cell::Text("sales"),
                    Cell::Int(2),
                    Cell::Int(1),
                    Cell::Int(0),
                    Cell::Int(0),
                    Cell::Int(9_999_999_999),
                    Cell::Int(999_999_999_999_999),
                ],
                vec![
                    Cell::Text("hr"),
                    Cell::Int(1),
                    Cell::Int(0),
                    Cell::Int(1),
                    Cell::Int(0),
                    Cell::Null,
                    Cell::Null,
                ],
            ],
        )
    } else {
        Reply::Error(208, "unexpected statement")
    }
}

#[tokio::test]
async fn observe_reads_the_ag_over_tds() {
    let (port, seen) = responder(Arc::new(observing), false).await;
    let mut b = backend(port);
    let state = b.observe().await.unwrap();
    assert_eq!(state.setup, InstanceSetup::DONE);
    let ag = state.ag.unwrap();
    assert_eq!(ag.role, Role::Secondary);
    assert!(ag.online);
    assert_eq!(ag.sequence_number, 4_294_967_301);
    assert_eq!(ag.required_synchronized_secondaries, 1);
    assert_eq!(ag.replicas, ["ag-0", "ag-1"]);
    assert_eq!(ag.databases.len(), 2);
    assert_eq!(ag.databases[0].name, "sales");
    assert_eq!(ag.databases[0].sync, SyncState::Synchronized);
    assert_eq!(ag.databases[0].hardened_lsn, Some(10u128.pow(25) - 1));
    assert_eq!(ag.databases[1].sync, SyncState::Synchronizing);
    assert!(ag.databases[1].suspended);
    assert_eq!(ag.databases[1].hardened_lsn, None);
    assert_eq!(seen.lock().unwrap().len(), 4);

    // One connection for several observations.
    b.observe().await.unwrap();
    assert_eq!(seen.lock().unwrap().len(), 8);
}

#[tokio::test]
async fn without_the_ag_only_two_queries_are_sent() {
    let script: Script = Arc::new(|sql: &str| {
        if sql.contains(
            "FROM sys.availability_groups AS g \
             LEFT JOIN",
        ) {
            Reply::Rows(
                vec![
                    ("sequence_number", Col::BigInt),
                    ("required_synchronized_secondaries", Col::Int),
                    ("role", Col::Int),
                    ("operational_state", Col::Int),
                ],
                vec![],
            )
        } else {
            setup_row([1, 0, 0, 0, 0, 0, 0, 0])
        }
    });
    let (port, seen) = responder(script, false).await;
    let state = backend(port).observe().await.unwrap();
    assert_eq!(state.ag, None);
    assert!(state.setup.hadr_enabled && !state.setup.master_key);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

#[tokio::test]
async fn setup_sends_only_what_is_missing_in_order() {
    let (port, seen) = responder(Arc::new(|_: &str| Reply::Done), false).await;
    let have = InstanceSetup {
        hadr_enabled: true,
        master_key: true,
        login: false,
        user: false,
        certificate: false,
        endpoint: true,
        endpoint_started: false,
        connect_granted: false,
    };
    backend(port).setup_instance(have).await.unwrap();
    let n = SetupNames::default();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            tsql::create_login(&n.login, "login-pw"),
            tsql::create_user(&n.user, &n.login),
            tsql::create_certificate(&n.certificate, &n.user, &config().secrets.certificate),
            tsql::start_endpoint(&n.endpoint),
            tsql::grant_connect_on_endpoint(&n.endpoint, &n.login),
        ]
    );
}

#[tokio::test]
async fn a_refused_statement_stops_setup_with_the_server_error() {
    let script: Script = Arc::new(|sql: &str| {
        if sql.starts_with("CREATE CERTIFICATE") {
            Reply::Error(
                15208,
                "The certificate, asymmetric key, or private key file is not valid or does not exist",
            )
        } else {
            Reply::Done
        }
    });
    let (port, seen) = responder(script, false).await;
    let err = backend(port)
        .setup_instance(InstanceSetup::default())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, BackendError::Refused { code: 15208, .. }),
        "{err:?}"
    );
    let seen = seen.lock().unwrap();
    assert!(seen.last().unwrap().starts_with("CREATE CERTIFICATE"));
    assert_eq!(
        seen.len(),
        4,
        "master key, login, user, certificate: {seen:?}"
    );
}

#[tokio::test]
async fn demote_falls_back_to_offline_when_set_role_is_refused() {
    let script: Script = Arc::new(|sql: &str| {
        if sql.contains("SET (ROLE = SECONDARY)") {
            Reply::Error(
                41104,
                "Failover of the availability group to the local replica failed",
            )
        } else {
            Reply::Done
        }
    });
    let (port, seen) = responder(script, false).await;
    backend(port).demote().await.unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [tsql::set_role_secondary("agx"), tsql::offline("agx")]
    );
}

#[tokio::test]
async fn promote_forces_failover_then_resumes_every_database() {
    let (port, seen) = responder(Arc::new(|_: &str| Reply::Done), false).await;
    backend(port)
        .promote(&["sales".into(), "hr".into()])
        .await
        .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        [
            tsql::force_failover("agx"),
            tsql::resume_database("sales"),
            tsql::resume_database("hr"),
        ]
    );
}

#[tokio::test]
async fn ag_statements_reach_the_server_verbatim() {
    let (port, seen) = responder(Arc::new(|_: &str| Reply::Done), false).await;
    let mut b = backend(port);
    b.create_ag().await.unwrap();
    let other = ReplicaSpec {
        name: "ag-1".into(),
        endpoint_url: "tcp://ag-1.ag-pods.demo.svc:5022".into(),
        secondary_access: SecondaryAccessMode::Passive,
    };
    b.add_replica(&other).await.unwrap();
    b.join_ag().await.unwrap();
    b.grant_create_any_database().await.unwrap();
    b.set_required_synchronized_secondaries(1).await.unwrap();
    b.add_database("o'k]").await.unwrap();
    let mut expected = BTreeMap::new();
    for (i, s) in [
        tsql::create_availability_group("agx", &config().replica),
        tsql::add_replica("agx", &other),
        tsql::join("agx"),
        tsql::grant_create_any_database("agx"),
        tsql::set_required_synchronized_secondaries("agx", 1),
        tsql::create_database_if_missing("o'k]"),
        tsql::set_recovery_full("o'k]"),
        tsql::backup_database_to_null("o'k]"),
        tsql::add_database("agx", "o'k]"),
    ]
    .into_iter()
    .enumerate()
    {
        expected.insert(i, s);
    }
    let seen: BTreeMap<usize, String> = seen.lock().unwrap().iter().cloned().enumerate().collect();
    assert_eq!(seen, expected);
}

#[tokio::test]
async fn a_refused_login_says_so() {
    let (port, _) = responder(Arc::new(observing), true).await;
    let err = backend(port).observe().await.unwrap_err();
    match err {
        BackendError::LoginRefused { code, message } => {
            assert_eq!(code, 18456);
            assert!(message.contains("Login failed for user 'sa'"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn nothing_listening_reads_as_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    assert!(matches!(
        backend(port).observe().await,
        Err(BackendError::Unreachable(_))
    ));
}

#[tokio::test]
async fn a_statement_without_answer_times_out_and_the_next_call_reconnects() {
    let script: Script = Arc::new(|sql: &str| {
        if sql.starts_with("CREATE AVAILABILITY GROUP") {
            Reply::Hang
        } else {
            observing(sql)
        }
    });
    let (port, _, connections) = counting_responder(script, false).await;
    let mut b = TdsBackend::new(
        TdsTarget {
            host: "127.0.0.1".into(),
            port,
            username: "sa".into(),
            password: PASSWORD.into(),
            timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_millis(200),
        },
        config(),
    );
    match b.create_ag().await {
        Err(BackendError::Unreachable(message)) => {
            assert!(message.contains("no answer within"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(*connections.lock().unwrap(), 1);
    b.observe().await.unwrap();
    assert_eq!(
        *connections.lock().unwrap(),
        2,
        "the abandoned connection is not reused"
    );
}
