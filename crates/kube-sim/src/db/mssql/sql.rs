//! What the simulated SQL Server understands of T-SQL: the statements an availability-group agent
//! sends, recognised by their documented grammar (Microsoft's "CREATE AVAILABILITY GROUP", "ALTER
//! AVAILABILITY GROUP", "CREATE ENDPOINT", ... pages), and the catalog-view queries that read the
//! set-up and the AG state back. Anything else is a syntax error (102), so a statement the real
//! server would reject for its shape fails here too instead of being silently accepted.
//!
//! Queries are answered by column alias: the simulator knows the value of each column a query may
//! select (`role`, `synchronization_state`, ...) and returns them in the order the query names
//! them.

/// A lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word (keyword or regular identifier), as written.
    Word(String),
    /// A delimited identifier `[...]`, unescaped.
    Ident(String),
    /// A string literal `N'...'` or `'...'`, unescaped.
    Str(String),
    /// An unsigned integer.
    Num(u64),
    /// Any other character.
    Punct(char),
}

/// Splits `sql` into tokens; `Err` names the first character that cannot start a token.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let quoted = |i: &mut usize, close: char| -> Result<String, String> {
        let mut s = String::new();
        loop {
            match chars.get(*i) {
                None => return Err(format!("unclosed quotation mark after '{s}'")),
                Some(&c) if c == close => {
                    if chars.get(*i + 1) == Some(&close) {
                        s.push(close);
                        *i += 2;
                    } else {
                        *i += 1;
                        return Ok(s);
                    }
                }
                Some(&c) => {
                    s.push(c);
                    *i += 1;
                }
            }
        }
    };
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '[' {
            i += 1;
            out.push(Token::Ident(quoted(&mut i, ']')?));
        } else if c == '\'' {
            i += 1;
            out.push(Token::Str(quoted(&mut i, '\'')?));
        } else if (c == 'N' || c == 'n') && chars.get(i + 1) == Some(&'\'') {
            i += 2;
            out.push(Token::Str(quoted(&mut i, '\'')?));
        } else if c.is_ascii_digit() {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            let digits: String = chars[start..i].iter().collect();
            out.push(Token::Num(
                digits.parse().map_err(|_| format!("number {digits}"))?,
            ));
        } else if c.is_alphabetic() || c == '_' || c == '@' || c == '#' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '@' | '#' | '$'))
            {
                i += 1;
            }
            out.push(Token::Word(chars[start..i].iter().collect()));
        } else {
            out.push(Token::Punct(c));
            i += 1;
        }
    }
    Ok(out)
}

/// One `REPLICA ON` clause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaClause {
    /// The server instance name.
    pub name: String,
    /// `ENDPOINT_URL`.
    pub endpoint_url: String,
    /// `AVAILABILITY_MODE`.
    pub availability_mode: String,
    /// `FAILOVER_MODE`.
    pub failover_mode: String,
    /// `SEEDING_MODE` (MANUAL when absent).
    pub seeding_mode: String,
    /// `SECONDARY_ROLE (ALLOW_CONNECTIONS = ...)` (NO when absent).
    pub allow_connections: String,
}

/// A catalog-view query the simulator answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Query {
    /// `@@SERVERNAME`, HADR and the existence of the named set-up objects.
    Setup {
        /// Login named in `sys.server_principals`.
        login: Option<String>,
        /// User named in `master.sys.database_principals`.
        user: Option<String>,
        /// Certificate named in `master.sys.certificates`.
        certificate: Option<String>,
        /// Endpoint named in `sys.database_mirroring_endpoints`.
        endpoint: Option<String>,
        /// Selected column aliases, in order.
        columns: Vec<String>,
    },
    /// The AG row with the local replica's state.
    Ag {
        /// `g.name = ...`.
        ag: String,
        /// Selected column aliases, in order.
        columns: Vec<String>,
    },
    /// `sys.availability_replicas` names.
    Replicas {
        /// `g.name = ...`.
        ag: String,
    },
    /// Local database replica states.
    Databases {
        /// `g.name = ...`.
        ag: String,
        /// Selected column aliases, in order.
        columns: Vec<String>,
    },
}

/// A recognised statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    CreateMasterKey {
        password: String,
    },
    CreateLogin {
        login: String,
        password: String,
    },
    CreateUser {
        user: String,
        login: String,
    },
    CreateCertificate {
        name: String,
        owner: String,
        file: String,
        pfx: bool,
        key_file: Option<String>,
        password: String,
    },
    CreateEndpoint {
        name: String,
        port: u64,
        certificate: String,
    },
    StartEndpoint {
        name: String,
    },
    GrantConnect {
        endpoint: String,
        login: String,
    },
    CreateAg {
        ag: String,
        cluster_type: String,
        replica: ReplicaClause,
    },
    AddReplica {
        ag: String,
        replica: ReplicaClause,
    },
    Join {
        ag: String,
        cluster_type: String,
    },
    GrantCreateAnyDatabase {
        ag: String,
    },
    ForceFailover {
        ag: String,
    },
    SetRoleSecondary {
        ag: String,
    },
    Offline {
        ag: String,
    },
    SetRequiredSynchronizedSecondaries {
        ag: String,
        count: u64,
    },
    AddDatabase {
        ag: String,
        database: String,
    },
    ResumeDatabase {
        database: String,
    },
    CreateDatabaseIfMissing {
        database: String,
    },
    SetRecoveryFull {
        database: String,
    },
    Backup {
        database: String,
        disk: String,
    },
    Query(Query),
}

struct Cursor {
    tokens: Vec<Token>,
    at: usize,
}

impl Cursor {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn near(&self) -> String {
        match self.peek() {
            Some(Token::Word(w)) => w.clone(),
            Some(Token::Ident(i)) => i.clone(),
            Some(Token::Str(s)) => s.clone(),
            Some(Token::Num(n)) => n.to_string(),
            Some(Token::Punct(c)) => c.to_string(),
            None => "end of batch".into(),
        }
    }

    fn error<T>(&self) -> Result<T, String> {
        Err(format!("Incorrect syntax near '{}'.", self.near()))
    }

    fn is_kw(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(kw))
    }

    fn eat_kw(&mut self, kw: &str) -> bool {
        let yes = self.is_kw(kw);
        if yes {
            self.at += 1;
        }
        yes
    }

    fn kw(&mut self, kws: &str) -> Result<(), String> {
        for kw in kws.split_whitespace() {
            if !self.eat_kw(kw) {
                return self.error();
            }
        }
        Ok(())
    }

    fn punct(&mut self, c: char) -> Result<(), String> {
        if self.peek() == Some(&Token::Punct(c)) {
            self.at += 1;
            Ok(())
        } else {
            self.error()
        }
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Token::Punct(c));
        if yes {
            self.at += 1;
        }
        yes
    }

    /// The next token as `pick` reads it, consumed; a syntax error when `pick` refuses it.
    fn take<T>(&mut self, pick: impl FnOnce(&Token) -> Option<T>) -> Result<T, String> {
        match self.peek().and_then(pick) {
            Some(value) => {
                self.at += 1;
                Ok(value)
            }
            None => self.error(),
        }
    }

    /// A name: delimited or regular identifier.
    fn ident(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Ident(s) | Token::Word(s) => Some(s.clone()),
            _ => None,
        })
    }

    fn string(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Str(s) => Some(s.clone()),
            _ => None,
        })
    }

    fn num(&mut self) -> Result<u64, String> {
        self.take(|t| match t {
            Token::Num(n) => Some(*n),
            _ => None,
        })
    }

    fn word(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Word(w) => Some(w.to_ascii_uppercase()),
            _ => None,
        })
    }

    fn end(&mut self) -> Result<(), String> {
        self.eat_punct(';');
        if self.peek().is_some() {
            return self.error();
        }
        Ok(())
    }
}

/// Parses one batch holding one statement.
pub fn parse(sql: &str) -> Result<Statement, String> {
    let tokens = tokenize(sql)?;
    let mut c = Cursor { tokens, at: 0 };
    let statement = if c.is_kw("SELECT") {
        return query(sql, &c.tokens);
    } else if c.eat_kw("CREATE") {
        create(&mut c)?
    } else if c.eat_kw("ALTER") {
        alter(&mut c)?
    } else if c.eat_kw("GRANT") {
        c.kw("CONNECT ON ENDPOINT")?;
        c.punct(':')?;
        c.punct(':')?;
        let endpoint = c.ident()?;
        c.kw("TO")?;
        Statement::GrantConnect {
            endpoint,
            login: c.ident()?,
        }
    } else if c.eat_kw("IF") {
        c.kw("DB_ID")?;
        c.punct('(')?;
        let name = c.string()?;
        c.punct(')')?;
        c.kw("IS NULL CREATE DATABASE")?;
        let database = c.ident()?;
        if database != name {
            return Err(format!(
                "the batch tests DB_ID('{name}') but creates [{database}]"
            ));
        }
        Statement::CreateDatabaseIfMissing { database }
    } else if c.eat_kw("BACKUP") {
        c.kw("DATABASE")?;
        let database = c.ident()?;
        c.kw("TO DISK")?;
        c.punct('=')?;
        Statement::Backup {
            database,
            disk: c.string()?,
        }
    } else {
        return c.error();
    };
    c.end()?;
    Ok(statement)
}

fn create(c: &mut Cursor) -> Result<Statement, String> {
    if c.eat_kw("MASTER") {
        c.kw("KEY ENCRYPTION BY PASSWORD")?;
        c.punct('=')?;
        return Ok(Statement::CreateMasterKey {
            password: c.string()?,
        });
    }
    if c.eat_kw("LOGIN") {
        let login = c.ident()?;
        c.kw("WITH PASSWORD")?;
        c.punct('=')?;
        return Ok(Statement::CreateLogin {
            login,
            password: c.string()?,
        });
    }
    if c.eat_kw("USER") {
        let user = c.ident()?;
        c.kw("FOR LOGIN")?;
        return Ok(Statement::CreateUser {
            user,
            login: c.ident()?,
        });
    }
    if c.eat_kw("CERTIFICATE") {
        let name = c.ident()?;
        c.kw("AUTHORIZATION")?;
        let owner = c.ident()?;
        c.kw("FROM FILE")?;
        c.punct('=')?;
        let file = c.string()?;
        c.kw("WITH")?;
        let mut pfx = false;
        if c.eat_kw("FORMAT") {
            c.punct('=')?;
            let format = c.string()?;
            if !format.eq_ignore_ascii_case("PFX") {
                return Err(format!("Invalid FORMAT '{format}'."));
            }
            pfx = true;
            c.punct(',')?;
        }
        c.kw("PRIVATE KEY")?;
        c.punct('(')?;
        let mut key_file = None;
        if c.eat_kw("FILE") {
            c.punct('=')?;
            key_file = Some(c.string()?);
            c.punct(',')?;
        }
        c.kw("DECRYPTION BY PASSWORD")?;
        c.punct('=')?;
        let password = c.string()?;
        c.punct(')')?;
        if pfx == key_file.is_some() {
            return Err("A PFX file holds its private key: give FORMAT = 'PFX' or a private key FILE, not both or neither.".into());
        }
        return Ok(Statement::CreateCertificate {
            name,
            owner,
            file,
            pfx,
            key_file,
            password,
        });
    }
    if c.eat_kw("ENDPOINT") {
        let name = c.ident()?;
        c.kw("AS TCP")?;
        c.punct('(')?;
        c.kw("LISTENER_PORT")?;
        c.punct('=')?;
        let port = c.num()?;
        c.punct(')')?;
        c.kw("FOR DATABASE_MIRRORING")?;
        c.punct('(')?;
        c.kw("ROLE")?;
        c.punct('=')?;
        let role = c.word()?;
        if !matches!(role.as_str(), "ALL" | "PARTNER" | "WITNESS") {
            return Err(format!("Incorrect syntax near '{role}'."));
        }
        c.punct(',')?;
        c.kw("AUTHENTICATION")?;
        c.punct('=')?;
        c.kw("CERTIFICATE")?;
        let certificate = c.ident()?;
        c.punct(',')?;
        c.kw("ENCRYPTION")?;
        c.punct('=')?;
        c.kw("REQUIRED ALGORITHM")?;
        let algorithm = c.word()?;
        if !matches!(algorithm.as_str(), "AES" | "RC4") {
            return Err(format!("Incorrect syntax near '{algorithm}'."));
        }
        c.punct(')')?;
        return Ok(Statement::CreateEndpoint {
            name,
            port,
            certificate,
        });
    }
    if c.eat_kw("AVAILABILITY") {
        c.kw("GROUP")?;
        let ag = c.ident()?;
        c.kw("WITH")?;
        c.punct('(')?;
        c.kw("CLUSTER_TYPE")?;
        c.punct('=')?;
        let cluster_type = cluster_type(c)?;
        c.punct(')')?;
        c.kw("FOR REPLICA ON")?;
        let replica = replica(c)?;
        if c.peek() == Some(&Token::Punct(',')) {
            return Err("the simulator takes one REPLICA ON clause per statement".into());
        }
        return Ok(Statement::CreateAg {
            ag,
            cluster_type,
            replica,
        });
    }
    if c.eat_kw("DATABASE") {
        return Err(
            "CREATE DATABASE is accepted only as IF DB_ID(...) IS NULL CREATE DATABASE".into(),
        );
    }
    c.error()
}

fn cluster_type(c: &mut Cursor) -> Result<String, String> {
    let t = c.word()?;
    if !matches!(t.as_str(), "WSFC" | "EXTERNAL" | "NONE") {
        return Err(format!("Incorrect syntax near '{t}'."));
    }
    Ok(t)
}

fn replica(c: &mut Cursor) -> Result<ReplicaClause, String> {
    let name = c.string()?;
    c.kw("WITH")?;
    c.punct('(')?;
    let mut r = ReplicaClause {
        name,
        endpoint_url: String::new(),
        availability_mode: String::new(),
        failover_mode: String::new(),
        seeding_mode: "MANUAL".into(),
        allow_connections: "NO".into(),
    };
    loop {
        let option = c.word()?;
        match option.as_str() {
            "ENDPOINT_URL" => {
                c.punct('=')?;
                r.endpoint_url = c.string()?;
            }
            "AVAILABILITY_MODE" => {
                c.punct('=')?;
                r.availability_mode = c.word()?;
            }
            "FAILOVER_MODE" => {
                c.punct('=')?;
                r.failover_mode = c.word()?;
            }
            "SEEDING_MODE" => {
                c.punct('=')?;
                r.seeding_mode = c.word()?;
            }
            "SECONDARY_ROLE" => {
                c.punct('(')?;
                c.kw("ALLOW_CONNECTIONS")?;
                c.punct('=')?;
                r.allow_connections = c.word()?;
                c.punct(')')?;
            }
            _ => return Err(format!("Incorrect syntax near '{option}'.")),
        }
        if c.eat_punct(')') {
            break;
        }
        c.punct(',')?;
    }
    let checks = [
        (
            "AVAILABILITY_MODE",
            &r.availability_mode,
            &[
                "SYNCHRONOUS_COMMIT",
                "ASYNCHRONOUS_COMMIT",
                "CONFIGURATION_ONLY",
            ][..],
        ),
        (
            "FAILOVER_MODE",
            &r.failover_mode,
            &["AUTOMATIC", "MANUAL", "EXTERNAL"][..],
        ),
        (
            "SEEDING_MODE",
            &r.seeding_mode,
            &["AUTOMATIC", "MANUAL"][..],
        ),
        (
            "ALLOW_CONNECTIONS",
            &r.allow_connections,
            &["NO", "READ_ONLY", "ALL"][..],
        ),
    ];
    for (option, value, allowed) in checks {
        if value.is_empty() {
            return Err(format!("The {option} option of REPLICA ON is required."));
        }
        if !allowed.contains(&value.as_str()) {
            return Err(format!("Incorrect syntax near '{value}'."));
        }
    }
    if r.endpoint_url.is_empty() {
        return Err("The ENDPOINT_URL option of REPLICA ON is required.".into());
    }
    Ok(r)
}

fn alter(c: &mut Cursor) -> Result<Statement, String> {
    if c.eat_kw("ENDPOINT") {
        let name = c.ident()?;
        c.kw("STATE")?;
        c.punct('=')?;
        c.kw("STARTED")?;
        return Ok(Statement::StartEndpoint { name });
    }
    if c.eat_kw("DATABASE") {
        let database = c.ident()?;
        c.kw("SET")?;
        if c.eat_kw("HADR") {
            c.kw("RESUME")?;
            return Ok(Statement::ResumeDatabase { database });
        }
        c.kw("RECOVERY FULL")?;
        return Ok(Statement::SetRecoveryFull { database });
    }
    c.kw("AVAILABILITY GROUP")?;
    let ag = c.ident()?;
    if c.eat_kw("ADD") {
        if c.eat_kw("REPLICA") {
            c.kw("ON")?;
            return Ok(Statement::AddReplica {
                ag,
                replica: replica(c)?,
            });
        }
        c.kw("DATABASE")?;
        return Ok(Statement::AddDatabase {
            ag,
            database: c.ident()?,
        });
    }
    if c.eat_kw("JOIN") {
        c.kw("WITH")?;
        c.punct('(')?;
        c.kw("CLUSTER_TYPE")?;
        c.punct('=')?;
        let cluster_type = cluster_type(c)?;
        c.punct(')')?;
        return Ok(Statement::Join { ag, cluster_type });
    }
    if c.eat_kw("GRANT") {
        c.kw("CREATE ANY DATABASE")?;
        return Ok(Statement::GrantCreateAnyDatabase { ag });
    }
    if c.eat_kw("FORCE_FAILOVER_ALLOW_DATA_LOSS") {
        return Ok(Statement::ForceFailover { ag });
    }
    if c.eat_kw("OFFLINE") {
        return Ok(Statement::Offline { ag });
    }
    c.kw("SET")?;
    c.punct('(')?;
    if c.eat_kw("ROLE") {
        c.punct('=')?;
        c.kw("SECONDARY")?;
        c.punct(')')?;
        return Ok(Statement::SetRoleSecondary { ag });
    }
    c.kw("REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT")?;
    c.punct('=')?;
    let count = c.num()?;
    c.punct(')')?;
    Ok(Statement::SetRequiredSynchronizedSecondaries { ag, count })
}

const SETUP_COLUMNS: &[&str] = &[
    "server_name",
    "hadr_enabled",
    "master_key",
    "login",
    "user",
    "certificate",
    "endpoint",
    "endpoint_started",
    "connect_granted",
];
const AG_COLUMNS: &[&str] = &[
    "sequence_number",
    "required_synchronized_secondaries",
    "role",
    "operational_state",
];
const DATABASE_COLUMNS: &[&str] = &[
    "database_name",
    "synchronization_state",
    "is_failover_ready",
    "is_suspended",
    "database_state",
    "lsn_high",
    "lsn_low",
];

fn word_is(t: &Token, w: &str) -> bool {
    matches!(t, Token::Word(x) if x.eq_ignore_ascii_case(w))
}

/// The column aliases (`AS name`) among `known`, in order.
fn aliases(tokens: &[Token], known: &[&str]) -> Vec<String> {
    tokens
        .windows(2)
        .filter(|w| word_is(&w[0], "AS"))
        .filter_map(|w| match &w[1] {
            Token::Word(a) | Token::Ident(a) => known
                .iter()
                .find(|k| k.eq_ignore_ascii_case(a))
                .map(|k| (*k).to_owned()),
            _ => None,
        })
        .collect()
}

/// The string compared with `<view>... name =` after the named view (`sys.x AS a ... WHERE
/// name = N'...'` or `WHERE g.name = N'...'`).
fn name_after(tokens: &[Token], view: &str) -> Option<String> {
    let start = tokens.iter().position(|t| word_is(t, view))?;
    tokens[start..].windows(3).find_map(|w| match w {
        [Token::Word(n), Token::Punct('='), Token::Str(s)] if n.eq_ignore_ascii_case("name") => {
            Some(s.clone())
        }
        _ => None,
    })
}

fn query(sql: &str, tokens: &[Token]) -> Result<Statement, String> {
    let has = |w: &str| tokens.iter().any(|t| word_is(t, w));
    let ag = || {
        name_after(tokens, "availability_groups")
            .ok_or_else(|| "the query names no availability group (g.name = N'...')".to_owned())
    };
    let q = if has("@@SERVERNAME") {
        Query::Setup {
            login: name_after(tokens, "server_principals"),
            user: name_after(tokens, "database_principals"),
            certificate: name_after(tokens, "certificates"),
            endpoint: name_after(tokens, "database_mirroring_endpoints"),
            columns: aliases(tokens, SETUP_COLUMNS),
        }
    } else if has("dm_hadr_database_replica_states") {
        Query::Databases {
            ag: ag()?,
            columns: aliases(tokens, DATABASE_COLUMNS),
        }
    } else if has("availability_replicas") {
        if !has("replica_server_name") {
            return Err(
                "the simulator answers sys.availability_replicas with replica_server_name only"
                    .into(),
            );
        }
        Query::Replicas { ag: ag()? }
    } else if has("availability_groups") {
        Query::Ag {
            ag: ag()?,
            columns: aliases(tokens, AG_COLUMNS),
        }
    } else {
        return Err(format!(
            "the simulated SQL Server does not answer this query: {sql}"
        ));
    };
    Ok(Statement::Query(q))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_unescape_names_and_strings() {
        let t = tokenize("CREATE LOGIN [a]]b] WITH PASSWORD = N'it''s';").unwrap();
        assert_eq!(t[2], Token::Ident("a]b".into()));
        assert_eq!(t[6], Token::Str("it's".into()));
        assert_eq!(t[7], Token::Punct(';'));
        assert!(tokenize("SELECT N'open").is_err());
    }

    #[test]
    fn instance_setup_statements() {
        assert_eq!(
            parse("CREATE MASTER KEY ENCRYPTION BY PASSWORD = N'pw'").unwrap(),
            Statement::CreateMasterKey {
                password: "pw".into()
            }
        );
        assert_eq!(
            parse("create user [dbm_user] for login [dbm_login]").unwrap(),
            Statement::CreateUser {
                user: "dbm_user".into(),
                login: "dbm_login".into()
            }
        );
        let pfx = parse("CREATE CERTIFICATE [c] AUTHORIZATION [u] FROM FILE = N'/k.p12' WITH FORMAT = 'PFX', PRIVATE KEY (DECRYPTION BY PASSWORD = N'x')").unwrap();
        assert!(matches!(
            pfx,
            Statement::CreateCertificate {
                pfx: true,
                key_file: None,
                ..
            }
        ));
        let pvk = parse("CREATE CERTIFICATE [c] AUTHORIZATION [u] FROM FILE = N'/c.cer' WITH PRIVATE KEY (FILE = N'/c.pvk', DECRYPTION BY PASSWORD = N'x')").unwrap();
        assert!(matches!(
            pvk,
            Statement::CreateCertificate {
                pfx: false,
                key_file: Some(_),
                ..
            }
        ));
        assert_eq!(
            parse("CREATE ENDPOINT [e] AS TCP (LISTENER_PORT = 5022) FOR DATABASE_MIRRORING (ROLE = ALL, AUTHENTICATION = CERTIFICATE [c], ENCRYPTION = REQUIRED ALGORITHM AES)").unwrap(),
            Statement::CreateEndpoint { name: "e".into(), port: 5022, certificate: "c".into() }
        );
        assert_eq!(
            parse("GRANT CONNECT ON ENDPOINT::[e] TO [l]").unwrap(),
            Statement::GrantConnect {
                endpoint: "e".into(),
                login: "l".into()
            }
        );
    }

    #[test]
    fn availability_group_statements() {
        let create = parse("CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = EXTERNAL) FOR REPLICA ON N'ag-0' WITH (ENDPOINT_URL = N'tcp://ag-0.ag-pods.demo.svc:5022', AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL, SEEDING_MODE = AUTOMATIC, SECONDARY_ROLE (ALLOW_CONNECTIONS = NO))").unwrap();
        let Statement::CreateAg {
            ag,
            cluster_type,
            replica,
        } = create
        else {
            panic!("{create:?}")
        };
        assert_eq!((ag.as_str(), cluster_type.as_str()), ("ag", "EXTERNAL"));
        assert_eq!(replica.name, "ag-0");
        assert_eq!(replica.seeding_mode, "AUTOMATIC");
        assert_eq!(replica.allow_connections, "NO");
        for (sql, want) in [
            (
                "ALTER AVAILABILITY GROUP [ag] JOIN WITH (CLUSTER_TYPE = EXTERNAL)",
                Statement::Join {
                    ag: "ag".into(),
                    cluster_type: "EXTERNAL".into(),
                },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] GRANT CREATE ANY DATABASE",
                Statement::GrantCreateAnyDatabase { ag: "ag".into() },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] FORCE_FAILOVER_ALLOW_DATA_LOSS",
                Statement::ForceFailover { ag: "ag".into() },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] SET (ROLE = SECONDARY)",
                Statement::SetRoleSecondary { ag: "ag".into() },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] OFFLINE",
                Statement::Offline { ag: "ag".into() },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] SET (REQUIRED_SYNCHRONIZED_SECONDARIES_TO_COMMIT = 1)",
                Statement::SetRequiredSynchronizedSecondaries {
                    ag: "ag".into(),
                    count: 1,
                },
            ),
            (
                "ALTER AVAILABILITY GROUP [ag] ADD DATABASE [sales]",
                Statement::AddDatabase {
                    ag: "ag".into(),
                    database: "sales".into(),
                },
            ),
            (
                "ALTER DATABASE [sales] SET HADR RESUME",
                Statement::ResumeDatabase {
                    database: "sales".into(),
                },
            ),
            (
                "IF DB_ID(N'sales') IS NULL CREATE DATABASE [sales]",
                Statement::CreateDatabaseIfMissing {
                    database: "sales".into(),
                },
            ),
            (
                "BACKUP DATABASE [sales] TO DISK = N'/dev/null'",
                Statement::Backup {
                    database: "sales".into(),
                    disk: "/dev/null".into(),
                },
            ),
        ] {
            assert_eq!(parse(sql).unwrap(), want, "{sql}");
        }
    }

    #[test]
    fn malformed_statements_are_syntax_errors() {
        for sql in [
            "CREATE AVAILABILITY GROUP [ag] FOR REPLICA ON N'a' WITH (ENDPOINT_URL = N'tcp://a:5022')",
            "CREATE AVAILABILITY GROUP [ag] WITH (CLUSTER_TYPE = PACEMAKER) FOR REPLICA ON N'a' WITH (ENDPOINT_URL = N'tcp://a:5022', AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL)",
            "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON N'a' WITH (ENDPOINT_URL = N'tcp://a:5022', AVAILABILITY_MODE = SYNC, FAILOVER_MODE = EXTERNAL)",
            "ALTER AVAILABILITY GROUP [ag] ADD REPLICA ON N'a' WITH (AVAILABILITY_MODE = SYNCHRONOUS_COMMIT, FAILOVER_MODE = EXTERNAL)",
            "ALTER AVAILABILITY GROUP [ag] SET ROLE = SECONDARY",
            "CREATE CERTIFICATE [c] AUTHORIZATION [u] FROM FILE = N'/k.p12' WITH PRIVATE KEY (DECRYPTION BY PASSWORD = N'x')",
            "CREATE DATABASE [x]",
            "DROP DATABASE [x]",
            "ALTER DATABASE [x] SET HADR RESUME; DROP DATABASE [y]",
            "IF DB_ID(N'a') IS NULL CREATE DATABASE [b]",
        ] {
            assert!(parse(sql).is_err(), "{sql}");
        }
    }

    #[test]
    fn queries_are_answered_by_alias() {
        let setup = parse("SELECT CAST(@@SERVERNAME AS nvarchar(128)) AS server_name, CASE WHEN EXISTS (SELECT 1 FROM sys.server_principals WHERE name = N'dbm_login') THEN 1 ELSE 0 END AS login, CASE WHEN EXISTS (SELECT 1 FROM sys.database_mirroring_endpoints AS e WHERE e.name = N'Hadr_endpoint') THEN 1 ELSE 0 END AS [endpoint]").unwrap();
        let Statement::Query(Query::Setup {
            login,
            endpoint,
            columns,
            user,
            ..
        }) = setup
        else {
            panic!("{setup:?}")
        };
        assert_eq!(login.as_deref(), Some("dbm_login"));
        assert_eq!(user, None);
        assert_eq!(
            endpoint.as_deref(),
            Some("Hadr_endpoint"),
            "qualified names count"
        );
        assert_eq!(columns, ["server_name", "login", "endpoint"]);
        let dbs = parse("SELECT DB_NAME(s.database_id) AS database_name, CAST(s.is_suspended AS int) AS is_suspended FROM sys.dm_hadr_database_replica_states AS s JOIN sys.availability_groups AS g ON g.group_id = s.group_id WHERE s.is_local = 1 AND g.name = N'ag'").unwrap();
        assert_eq!(
            dbs,
            Statement::Query(Query::Databases {
                ag: "ag".into(),
                columns: vec!["database_name".into(), "is_suspended".into()]
            })
        );
        assert!(parse("SELECT name FROM sys.databases").is_err());
    }
}
