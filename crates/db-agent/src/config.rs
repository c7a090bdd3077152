//! The command line and environment of `db-agent run`, and the election timing derived from it.
//!
//! The provisioner starts the agent as the `mssql-coordinator` sidecar with
//! `run --ag-name=<ag> --election-tick=<n> --heartbeat-tick=<n> --period=<duration>` (KubeDB's
//! Raft settings, `spec.topology.availabilityGroup.leaderElection`) and the environment
//! `POD_NAME`, `POD_NAMESPACE`, `POD_IP`, `DB_NAME`, `AG_NAME`, `GOVERNING_SERVICE`,
//! `MSSQL_SA_USERNAME`, `MSSQL_SA_PASSWORD`. `LOG_FORMAT=json` switches to JSON logs.

use std::time::Duration;

use clap::Args;
use operator_common::LogFormat;
use thiserror::Error;

/// Flags of `db-agent run`: exactly those the provisioner passes.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Availability group name (defaults to `AG_NAME`): runs the SQL Server agent.
    #[arg(long, env = "AG_NAME", required_unless_present = "node_type")]
    pub ag_name: Option<String>,
    /// SingleStore node type, `aggregator` or `leaf`: runs the SingleStore agent.
    #[arg(long, value_parser = ["aggregator", "leaf"], conflicts_with = "ag_name")]
    pub node_type: Option<String>,
    /// The Singlestore object (defaults to `DB_NAME`).
    #[arg(long)]
    pub db_name: Option<String>,
    /// SingleStore: how long the master aggregator must be offline, with its Lease expired,
    /// before a child replaces it (a Go duration). A master that restarts within it keeps its
    /// role, as SingleStore advises for a recoverable master.
    #[arg(long, env = "MASTER_LOST_AFTER", default_value = "30s")]
    pub master_lost_after: String,
    /// Heartbeats a Lease lasts: the Lease duration is `election-tick × period` (at least
    /// 10 s).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub election_tick: u32,
    /// Ticks between renewals: `heartbeat-tick × period` (at least 1 s).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub heartbeat_tick: u32,
    /// Tick period, a Go duration (`100ms`, `1s`, `1m30s`).
    #[arg(long, default_value = "300ms")]
    pub period: String,
}

impl RunArgs {
    /// The election timing the flags describe, checked.
    pub fn timing(&self) -> Result<Timing, ConfigError> {
        let period = api::common::parse_duration("--period", &self.period)
            .map_err(|e| ConfigError::Period(e.to_string()))?;
        if period.is_zero() {
            return Err(ConfigError::Period("must be greater than zero".into()));
        }
        if self.election_tick <= self.heartbeat_tick {
            return Err(ConfigError::Ticks {
                election: self.election_tick,
                heartbeat: self.heartbeat_tick,
            });
        }
        Ok(Timing::derive(
            period,
            self.election_tick,
            self.heartbeat_tick,
        ))
    }
}

/// `LOG_FORMAT`: `json` for one JSON object per line, anything else for text.
pub fn log_format(value: Option<&str>) -> LogFormat {
    match value {
        Some("json") => LogFormat::Json,
        _ => LogFormat::Text,
    }
}

/// `db-agent arbiter`: the arguments the provisioner passes to the arbiter container.
#[derive(Debug, Clone, clap::Args)]
pub struct ArbiterArgs {
    /// Availability group name (defaults to `AG_NAME`); only logged.
    #[arg(long, env = "AG_NAME")]
    pub ag_name: String,
}

/// Why the configuration is unusable.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A required environment variable is missing or empty.
    #[error("environment variable {0} is required")]
    MissingEnv(&'static str),
    /// `--period` does not parse or is zero.
    #[error("--period: {0}")]
    Period(String),
    /// `--election-tick` must exceed `--heartbeat-tick`.
    #[error(
        "--election-tick ({election}) must be greater than --heartbeat-tick ({heartbeat}), or the Lease would expire between renewals"
    )]
    Ticks {
        /// `--election-tick`.
        election: u32,
        /// `--heartbeat-tick`.
        heartbeat: u32,
    },
    /// `AG_DATABASES` is not a JSON list of names.
    #[error("environment variable AG_DATABASES is not a JSON list of database names: {0}")]
    Databases(String),
    /// `SECONDARY_ACCESS_MODE` is none of the spec's values.
    #[error(
        "environment variable SECONDARY_ACCESS_MODE must be Passive, ReadOnly or All, not {0:?}"
    )]
    SecondaryAccess(String),
    /// `--master-lost-after` does not parse.
    #[error("--master-lost-after: {0}")]
    MasterLostAfter(String),
    /// `POD_IP` is not an IP address.
    #[error("environment variable POD_IP is not an IP address: {0:?}")]
    PodIp(String),
}

/// The shortest Lease the agent uses, whatever the ticks say: KubeDB's defaults (300 ms × 10)
/// would mean a Lease write every 300 ms per database, and a pause of the API server or of the
/// agent longer than 3 s would already fail over.
pub const MIN_LEASE_DURATION: Duration = Duration::from_secs(10);
/// The shortest renew interval: one API write per second per database at most.
pub const MIN_RENEW_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest loop tick.
pub const MIN_TICK: Duration = Duration::from_millis(100);

/// Election timing. Invariants (tested): `renew_interval ≤ lease_duration / 3`,
/// `renew_deadline = ⌊2/3 × lease_duration⌋`, `tick ≤ renew_interval / 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timing {
    /// How often the loop observes and decides.
    pub tick: Duration,
    /// `spec.leaseDurationSeconds` (whole seconds).
    pub lease_duration: Duration,
    /// How often the holder renews.
    pub renew_interval: Duration,
    /// A holder that has not renewed for this long demotes itself.
    pub renew_deadline: Duration,
    /// A peer answer older than this does not count.
    pub peer_stale_after: Duration,
}

impl Timing {
    /// Derives the timing from KubeDB's Raft settings, with the floors above.
    pub fn derive(period: Duration, election_tick: u32, heartbeat_tick: u32) -> Self {
        let heartbeat = period.saturating_mul(heartbeat_tick);
        let election = period.saturating_mul(election_tick);
        let renew_interval = heartbeat.max(MIN_RENEW_INTERVAL);
        let lease = election
            .max(MIN_LEASE_DURATION)
            .max(renew_interval.saturating_mul(3));
        // Whole seconds, rounded up: the Lease field is an integer.
        let lease_duration =
            Duration::from_secs(lease.as_secs() + u64::from(lease.subsec_nanos() > 0));
        let renew_interval = renew_interval.min(lease_duration / 3);
        let tick = period.clamp(MIN_TICK, renew_interval / 2);
        Self {
            tick,
            lease_duration,
            renew_interval,
            renew_deadline: lease_duration * 2 / 3,
            peer_stale_after: renew_interval * 2,
        }
    }

    /// The part [`crate::mssql::decide`] uses.
    pub fn decide(&self) -> crate::mssql::decide::Timing {
        crate::mssql::decide::Timing {
            renew_interval: self.renew_interval,
            renew_deadline: self.renew_deadline,
            peer_stale_after: self.peer_stale_after,
        }
    }
}

/// Everything `run` needs.
#[derive(Clone, PartialEq, Eq)]
pub struct Config {
    /// This pod (`POD_NAME`): also the SQL Server instance and replica name.
    pub pod_name: String,
    /// Its namespace (`POD_NAMESPACE`).
    pub namespace: String,
    /// Its IP (`POD_IP`): where the HTTP server listens and where the agent reaches its own SQL
    /// Server ([`Config::local_address`]).
    pub pod_ip: Option<std::net::IpAddr>,
    /// The MSSQLServer object (`DB_NAME`).
    pub db_name: String,
    /// The availability group.
    pub ag_name: String,
    /// Headless service of the pods (`GOVERNING_SERVICE`).
    pub governing_service: String,
    /// SQL login (`MSSQL_SA_USERNAME`, `sa` when unset).
    pub sa_username: String,
    /// Its password (`MSSQL_SA_PASSWORD`).
    pub sa_password: String,
    /// Election timing.
    pub timing: Timing,
    /// Log format (`LOG_FORMAT`).
    pub log_format: LogFormat,
    /// The secret holding the master-key password (`MASTER_KEY_SECRET`, else `<db>-master-key`;
    /// the provisioner passes `spec.topology.availabilityGroup.masterKeySecretName`).
    pub master_key_secret: String,
    /// The secret holding the endpoint login's password (`DBM_LOGIN_SECRET`, else
    /// `<db>-dbm-login`; from `spec.topology.availabilityGroup.loginSecretName`).
    pub login_secret: String,
    /// Databases to create and add to the AG (`AG_DATABASES`, a JSON list of names; from
    /// `spec.topology.availabilityGroup.databases`).
    pub databases: Vec<String>,
    /// Read access on the secondaries (`SECONDARY_ACCESS_MODE`: Passive, ReadOnly or All; from
    /// `spec.topology.availabilityGroup.secondaryAccessMode`).
    pub secondary_access: api::mssql::SecondaryAccessMode,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("pod_name", &self.pod_name)
            .field("namespace", &self.namespace)
            .field("db_name", &self.db_name)
            .field("ag_name", &self.ag_name)
            .field("governing_service", &self.governing_service)
            .field("sa_username", &self.sa_username)
            .field("timing", &self.timing)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Builds the configuration from the flags and an environment lookup (`std::env::var` in
    /// the binary, a map in tests).
    pub fn new(run: &RunArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let need = |name: &'static str| get(name).ok_or(ConfigError::MissingEnv(name));
        let timing = run.timing()?;
        let log_format = log_format(get("LOG_FORMAT").as_deref());
        let pod_name = need("POD_NAME")?;
        let namespace = need("POD_NAMESPACE")?;
        let db_name = need("DB_NAME")?;
        Ok(Self {
            pod_name,
            namespace,
            pod_ip: get("POD_IP")
                .map(|ip| ip.parse().map_err(|_| ConfigError::PodIp(ip)))
                .transpose()?,
            master_key_secret: get("MASTER_KEY_SECRET")
                .unwrap_or_else(|| api::names::mssql::master_key_secret(&db_name)),
            login_secret: get("DBM_LOGIN_SECRET")
                .unwrap_or_else(|| api::names::mssql::dbm_login_secret(&db_name)),
            db_name,
            ag_name: run
                .ag_name
                .clone()
                .ok_or(ConfigError::MissingEnv("AG_NAME"))?,
            governing_service: need("GOVERNING_SERVICE")?,
            sa_username: get(api::names::mssql::ENV_SA_USERNAME)
                .unwrap_or_else(|| api::names::mssql::SA_USER.to_owned()),
            sa_password: need(api::names::mssql::ENV_SA_PASSWORD)?,
            timing,
            log_format,
            databases: match get("AG_DATABASES") {
                None => Vec::new(),
                Some(json) => serde_json::from_str(&json)
                    .map_err(|e| ConfigError::Databases(format!("{json:?}: {e}")))?,
            },
            secondary_access: match get("SECONDARY_ACCESS_MODE") {
                None => api::mssql::SecondaryAccessMode::default(),
                Some(v) => api::mssql::SecondaryAccessMode::parse(&v)
                    .ok_or(ConfigError::SecondaryAccess(v))?,
            },
        })
    }

    /// The address of this pod as seen from inside it: `POD_IP`, else loopback. The agent's HTTP
    /// server listens there and the agent reaches its own SQL Server there. Inside a pod both are
    /// addresses of the pod's own network namespace, so the connection never leaves the pod;
    /// the pod IP is used rather than `127.0.0.1` because it is the one address that is distinct
    /// per pod where pods share a host network (kube-sim's process runtime, `hostNetwork`).
    pub fn local_address(&self) -> std::net::IpAddr {
        self.pod_ip
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    /// The primary Lease, `<db>-primary`.
    pub fn lease_name(&self) -> String {
        format!("{}-primary", self.db_name)
    }

    /// Mirroring endpoint URL of `pod`: its stable DNS name under the governing service.
    pub fn endpoint_url(&self, pod: &str) -> String {
        format!(
            "tcp://{pod}.{}.{}.svc:{}",
            self.governing_service,
            self.namespace,
            api::names::mssql::MIRRORING_PORT
        )
    }
}

/// The configuration of the SingleStore agent (`run --db-name=<db> --node-type=<type>`, the
/// arguments KubeDB's `singlestore-coordinator` takes), from the flags and the environment
/// `POD_NAME`, `POD_NAMESPACE`, `POD_IP`, `GOVERNING_SERVICE`, `ROOT_USERNAME`, `ROOT_PASSWORD`,
/// `LICENSE_KEY`, `AGGREGATOR_SET`, `LEAF_SET`.
#[derive(Clone, PartialEq, Eq)]
pub struct SdbConfig {
    /// This pod.
    pub pod_name: String,
    /// Its namespace.
    pub namespace: String,
    /// Its IP: where the agent listens and reaches its node.
    pub pod_ip: Option<std::net::IpAddr>,
    /// The Singlestore object.
    pub db_name: String,
    /// The pods' headless service.
    pub governing_service: String,
    /// This node's kind.
    pub kind: crate::sdb::decide::NodeKind,
    /// `ROOT_USERNAME` (`root` when unset).
    pub root_username: String,
    /// `ROOT_PASSWORD`.
    pub root_password: String,
    /// `LICENSE_KEY`: set on the master before it bootstraps.
    pub license: Option<String>,
    /// The aggregators' StatefulSet (`AGGREGATOR_SET`, else `<db>-aggregator`).
    pub aggregator_set: String,
    /// The leaves' StatefulSet (`LEAF_SET`, else `<db>-leaf`).
    pub leaf_set: String,
    /// Election timing (KubeDB's defaults: 300 ms period, 10 election ticks, 1 heartbeat tick).
    pub timing: Timing,
    /// See [`RunArgs::master_lost_after`].
    pub master_lost_after: Duration,
    /// Log format.
    pub log_format: LogFormat,
}

impl std::fmt::Debug for SdbConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SdbConfig")
            .field("pod_name", &self.pod_name)
            .field("namespace", &self.namespace)
            .field("db_name", &self.db_name)
            .field("kind", &self.kind)
            .field("aggregator_set", &self.aggregator_set)
            .field("leaf_set", &self.leaf_set)
            .field("timing", &self.timing)
            .field("master_lost_after", &self.master_lost_after)
            .finish_non_exhaustive()
    }
}

impl SdbConfig {
    /// From the flags and an environment lookup.
    pub fn new(run: &RunArgs, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &str| env(name).filter(|v| !v.is_empty());
        let need = |name: &'static str| get(name).ok_or(ConfigError::MissingEnv(name));
        let timing = run.timing()?;
        let master_lost_after =
            api::common::parse_duration("--master-lost-after", &run.master_lost_after)
                .map_err(|e| ConfigError::MasterLostAfter(e.to_string()))?;
        let db_name = match &run.db_name {
            Some(name) if !name.is_empty() => name.clone(),
            _ => need("DB_NAME")?,
        };
        let kind = match run.node_type.as_deref() {
            Some("leaf") => crate::sdb::decide::NodeKind::Leaf,
            _ => crate::sdb::decide::NodeKind::Aggregator,
        };
        Ok(Self {
            pod_name: need("POD_NAME")?,
            namespace: need("POD_NAMESPACE")?,
            pod_ip: get("POD_IP")
                .map(|ip| ip.parse().map_err(|_| ConfigError::PodIp(ip)))
                .transpose()?,
            governing_service: need("GOVERNING_SERVICE")?,
            kind,
            root_username: get("ROOT_USERNAME")
                .unwrap_or_else(|| api::names::singlestore::ROOT_USER.to_owned()),
            root_password: need("ROOT_PASSWORD")?,
            license: get("LICENSE_KEY"),
            aggregator_set: get("AGGREGATOR_SET")
                .unwrap_or_else(|| api::names::singlestore::aggregator_petset(&db_name, None)),
            leaf_set: get("LEAF_SET")
                .unwrap_or_else(|| api::names::singlestore::leaf_petset(&db_name, None)),
            db_name,
            timing,
            master_lost_after,
            log_format: log_format(get("LOG_FORMAT").as_deref()),
        })
    }

    /// The address of this pod from inside it (see [`Config::local_address`]).
    pub fn local_address(&self) -> std::net::IpAddr {
        self.pod_ip
            .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
    }

    /// The stable address of `pod` in cluster statements: `<pod>.<governing service>.<ns>.svc`.
    pub fn host(&self, pod: &str) -> String {
        format!("{pod}.{}.{}.svc", self.governing_service, self.namespace)
    }

    /// The kind of node `pod` runs, from its StatefulSet.
    pub fn kind_of(&self, pod: &str) -> crate::sdb::decide::NodeKind {
        let set = pod.rsplit_once('-').map_or(pod, |(set, _)| set);
        if set == self.leaf_set {
            crate::sdb::decide::NodeKind::Leaf
        } else {
            crate::sdb::decide::NodeKind::Aggregator
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;
    use std::collections::HashMap;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        run: RunArgs,
    }

    fn args(extra: &[&str]) -> Result<RunArgs, clap::Error> {
        let mut argv = vec!["db-agent"];
        argv.extend_from_slice(extra);
        Cli::try_parse_from(argv).map(|c| c.run)
    }

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    const POD_ENV: [(&str, &str); 6] = [
        ("POD_NAME", "ag-1"),
        ("POD_NAMESPACE", "demo"),
        ("POD_IP", "10.0.0.7"),
        ("DB_NAME", "ag"),
        ("GOVERNING_SERVICE", "ag-pods"),
        ("MSSQL_SA_PASSWORD", "pw"),
    ];

    #[test]
    fn the_provisioners_arguments_parse() {
        let run = args(&[
            "--ag-name=agx",
            "--election-tick=10",
            "--heartbeat-tick=1",
            "--period=300ms",
        ])
        .unwrap();
        let config = Config::new(&run, env(&POD_ENV)).unwrap();
        assert_eq!(config.pod_name, "ag-1");
        assert_eq!(config.ag_name, "agx");
        assert_eq!(run.node_type, None);
        assert_eq!(config.sa_username, "sa");
        assert_eq!(config.pod_ip, Some("10.0.0.7".parse().unwrap()));
        assert_eq!(config.local_address().to_string(), "10.0.0.7");
        assert!(config.databases.is_empty());
        assert_eq!(
            config.secondary_access,
            api::mssql::SecondaryAccessMode::Passive
        );
        let mut with_dbs = POD_ENV.to_vec();
        with_dbs.extend([
            ("AG_DATABASES", r#"["agdb1","odd, name"]"#),
            ("SECONDARY_ACCESS_MODE", "ReadOnly"),
        ]);
        let config = Config::new(&run, env(&with_dbs)).unwrap();
        assert_eq!(config.databases, ["agdb1", "odd, name"]);
        assert_eq!(
            config.secondary_access,
            api::mssql::SecondaryAccessMode::ReadOnly
        );
        assert_eq!(config.lease_name(), "ag-primary");
        assert_eq!(
            config.endpoint_url("ag-0"),
            "tcp://ag-0.ag-pods.demo.svc:5022"
        );
        assert_eq!(config.log_format, LogFormat::Text);
        assert!(!format!("{config:?}").contains("pw"));
        // The AG secrets: KubeDB's default names unless the provisioner names others.
        assert_eq!(config.master_key_secret, "ag-master-key");
        assert_eq!(config.login_secret, "ag-dbm-login");
        let mut custom = POD_ENV.to_vec();
        custom.extend([
            ("MASTER_KEY_SECRET", "my-master"),
            ("DBM_LOGIN_SECRET", "my-login"),
        ]);
        let config = Config::new(&run, env(&custom)).unwrap();
        assert_eq!(config.master_key_secret, "my-master");
        assert_eq!(config.login_secret, "my-login");
    }

    #[test]
    fn the_singlestore_configuration() {
        let run = args(&["--db-name=sdb", "--node-type=aggregator"]).unwrap();
        let pod = |extra: &[(&'static str, &'static str)]| {
            let mut pairs = vec![
                ("POD_NAME", "sdb-aggregator-1"),
                ("POD_NAMESPACE", "demo"),
                ("POD_IP", "10.0.0.8"),
                ("GOVERNING_SERVICE", "sdb-pods"),
                ("ROOT_PASSWORD", "pw"),
            ];
            pairs.extend_from_slice(extra);
            pairs
        };
        let config = SdbConfig::new(&run, env(&pod(&[]))).unwrap();
        assert_eq!(config.kind, crate::sdb::decide::NodeKind::Aggregator);
        assert_eq!(config.root_username, "root");
        assert_eq!(config.license, None);
        assert_eq!(
            (config.aggregator_set.as_str(), config.leaf_set.as_str()),
            ("sdb-aggregator", "sdb-leaf")
        );
        assert_eq!(config.master_lost_after, Duration::from_secs(30));
        assert_eq!(config.host("sdb-leaf-2"), "sdb-leaf-2.sdb-pods.demo.svc");
        assert_eq!(config.local_address().to_string(), "10.0.0.8");
        assert!(!format!("{config:?}").contains("pw"));
        // Suffixed sets, as the provisioner passes them.
        let config = SdbConfig::new(
            &args(&[
                "--db-name=sdb",
                "--node-type=leaf",
                "--master-lost-after=1m",
            ])
            .unwrap(),
            env(&pod(&[
                ("AGGREGATOR_SET", "sdb-x-aggregator"),
                ("LEAF_SET", "sdb-y-leaf"),
                ("LICENSE_KEY", "k"),
            ])),
        )
        .unwrap();
        assert_eq!(config.kind, crate::sdb::decide::NodeKind::Leaf);
        assert_eq!(
            config.kind_of("sdb-y-leaf-0"),
            crate::sdb::decide::NodeKind::Leaf
        );
        assert_eq!(
            config.kind_of("sdb-x-aggregator-3"),
            crate::sdb::decide::NodeKind::Aggregator
        );
        assert_eq!(config.license.as_deref(), Some("k"));
        assert_eq!(config.master_lost_after, Duration::from_secs(60));
        // Bad input, by name.
        let no_password = SdbConfig::new(
            &run,
            env(&[
                ("POD_NAME", "a"),
                ("POD_NAMESPACE", "n"),
                ("GOVERNING_SERVICE", "s"),
            ]),
        );
        assert_eq!(no_password, Err(ConfigError::MissingEnv("ROOT_PASSWORD")));
        let bad_grace = SdbConfig::new(
            &args(&[
                "--db-name=sdb",
                "--node-type=leaf",
                "--master-lost-after=soon",
            ])
            .unwrap(),
            env(&pod(&[])),
        );
        assert!(
            matches!(bad_grace, Err(ConfigError::MasterLostAfter(_))),
            "{bad_grace:?}"
        );
    }

    #[test]
    fn bad_input_is_refused_with_the_reason() {
        let run = args(&["--ag-name=a"]).unwrap();
        let mut missing = POD_ENV.to_vec();
        missing.retain(|(k, _)| *k != "MSSQL_SA_PASSWORD");
        assert_eq!(
            Config::new(&run, env(&missing)).unwrap_err(),
            ConfigError::MissingEnv("MSSQL_SA_PASSWORD")
        );
        let mut empty = POD_ENV.to_vec();
        empty.push(("POD_NAME", ""));
        let lookup = env(&empty);
        assert_eq!(
            Config::new(&run, |k| if k == "POD_NAME" {
                Some(String::new())
            } else {
                lookup(k)
            })
            .unwrap_err(),
            ConfigError::MissingEnv("POD_NAME")
        );
        let bad_period = args(&["--ag-name=a", "--period=soon"]).unwrap();
        assert!(matches!(
            Config::new(&bad_period, env(&POD_ENV)),
            Err(ConfigError::Period(_))
        ));
        let zero = args(&["--ag-name=a", "--period=0s"]).unwrap();
        assert!(matches!(
            Config::new(&zero, env(&POD_ENV)),
            Err(ConfigError::Period(_))
        ));
        let ticks = args(&["--ag-name=a", "--election-tick=2", "--heartbeat-tick=2"]).unwrap();
        assert_eq!(
            Config::new(&ticks, env(&POD_ENV)).unwrap_err(),
            ConfigError::Ticks {
                election: 2,
                heartbeat: 2
            }
        );
        let mut bad_ip = POD_ENV.to_vec();
        bad_ip.retain(|(k, _)| *k != "POD_IP");
        bad_ip.push(("POD_IP", "pod-0"));
        assert_eq!(
            Config::new(&run, env(&bad_ip)).unwrap_err(),
            ConfigError::PodIp("pod-0".into())
        );
        for (var, value) in [
            ("AG_DATABASES", "agdb1,agdb2"),
            ("SECONDARY_ACCESS_MODE", "readonly"),
        ] {
            let mut bad = POD_ENV.to_vec();
            bad.push((var, value));
            let err = Config::new(&run, env(&bad)).unwrap_err().to_string();
            assert!(err.contains(var), "{err}");
        }
        let mut no_ip = POD_ENV.to_vec();
        no_ip.retain(|(k, _)| *k != "POD_IP");
        let config = Config::new(&run, env(&no_ip)).unwrap();
        assert_eq!(config.local_address().to_string(), "127.0.0.1");
        assert!(args(&["--ag-name=a", "--heartbeat-tick=0"]).is_err());
        assert!(args(&["--ag-name=a", "--unknown=1"]).is_err());
    }

    #[test]
    fn json_logs_on_request() {
        let run = args(&["--ag-name=a"]).unwrap();
        let mut pairs = POD_ENV.to_vec();
        pairs.push(("LOG_FORMAT", "json"));
        assert_eq!(
            Config::new(&run, env(&pairs)).unwrap().log_format,
            LogFormat::Json
        );
    }

    #[test]
    fn timing_table() {
        let ms = Duration::from_millis;
        let s = Duration::from_secs;
        // (period, election, heartbeat) -> (tick, lease, renew, deadline, stale)
        let rows = [
            // KubeDB's webhook default: floors apply.
            ((ms(300), 10, 1), (ms(300), s(10), s(1), ms(6_666), s(2))),
            // The CRD default period.
            ((ms(100), 10, 1), (ms(100), s(10), s(1), ms(6_666), s(2))),
            // Long ticks are honoured.
            ((s(2), 10, 1), (s(1), s(20), s(2), ms(13_333), s(4))),
            // A fractional Lease rounds up to whole seconds.
            (
                (ms(1_050), 12, 2),
                (ms(1_050), s(13), ms(2_100), ms(8_666), ms(4_200)),
            ),
            // A heartbeat close to the election: renewals capped at a third of the Lease.
            ((s(1), 12, 10), (s(1), s(30), s(10), s(20), s(20))),
        ];
        for ((period, election, heartbeat), (tick, lease, renew, deadline, stale)) in rows {
            let t = Timing::derive(period, election, heartbeat);
            assert_eq!(
                (
                    t.tick,
                    t.lease_duration,
                    t.renew_interval,
                    t.deadline_ms(),
                    t.peer_stale_after
                ),
                (tick, lease, renew, deadline, stale),
                "{period:?} {election} {heartbeat}"
            );
            assert!(t.renew_interval * 3 <= t.lease_duration);
            assert!(t.tick * 2 <= t.renew_interval);
            assert!(t.renew_deadline < t.lease_duration);
        }
    }

    impl Timing {
        /// The renew deadline truncated to whole milliseconds, for the table.
        fn deadline_ms(&self) -> Duration {
            Duration::from_millis(u64::try_from(self.renew_deadline.as_millis()).unwrap())
        }
    }
}
