//! The server side of the MySQL client/server protocol (4.1), as far as the simulated SingleStore
//! ([`super::singlestore`]) needs it and mysql_async (0.37) speaks it: packet framing, the
//! Handshake v10 with `mysql_native_password` (an auth switch to it when a client proposes another
//! plugin), capability negotiation (`CLIENT_DEPRECATE_EOF` when the client asks for it),
//! COM_QUERY answered with OK, ERR (with SQL state) or a text result set, COM_PING, COM_INIT_DB,
//! COM_RESET_CONNECTION and COM_QUIT. No TLS (`CLIENT_SSL` is not offered), no compression, no
//! prepared statements (other commands get ERR 1047). The encodings follow MySQL's "Client/Server
//! Protocol" documentation.
//!
//! The server does not know SQL: [`serve`] hands each statement to a [`Handler`].

use std::net::IpAddr;

use sha1::{Digest, Sha1};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// `CLIENT_LONG_PASSWORD`.
pub const CLIENT_LONG_PASSWORD: u32 = 0x0000_0001;
/// `CLIENT_FOUND_ROWS`.
pub const CLIENT_FOUND_ROWS: u32 = 0x0000_0002;
/// `CLIENT_LONG_FLAG`.
pub const CLIENT_LONG_FLAG: u32 = 0x0000_0004;
/// `CLIENT_CONNECT_WITH_DB`: the handshake response names a database.
pub const CLIENT_CONNECT_WITH_DB: u32 = 0x0000_0008;
/// `CLIENT_PROTOCOL_41`.
pub const CLIENT_PROTOCOL_41: u32 = 0x0000_0200;
/// `CLIENT_SSL` (never offered here).
pub const CLIENT_SSL: u32 = 0x0000_0800;
/// `CLIENT_TRANSACTIONS`.
pub const CLIENT_TRANSACTIONS: u32 = 0x0000_2000;
/// `CLIENT_SECURE_CONNECTION`: the auth response has a one-byte length.
pub const CLIENT_SECURE_CONNECTION: u32 = 0x0000_8000;
/// `CLIENT_MULTI_RESULTS`.
pub const CLIENT_MULTI_RESULTS: u32 = 0x0002_0000;
/// `CLIENT_PS_MULTI_RESULTS`.
pub const CLIENT_PS_MULTI_RESULTS: u32 = 0x0004_0000;
/// `CLIENT_PLUGIN_AUTH`: handshake and response name the auth plugin.
pub const CLIENT_PLUGIN_AUTH: u32 = 0x0008_0000;
/// `CLIENT_CONNECT_ATTRS`.
pub const CLIENT_CONNECT_ATTRS: u32 = 0x0010_0000;
/// `CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA`: the auth response is length-encoded.
pub const CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA: u32 = 0x0020_0000;
/// `CLIENT_DEPRECATE_EOF`: result sets end with an OK packet (header 0xFE) and have no EOF
/// packet after the column definitions.
pub const CLIENT_DEPRECATE_EOF: u32 = 0x0100_0000;

/// What the server offers by default.
pub const SERVER_CAPABILITIES: u32 = CLIENT_LONG_PASSWORD
    | CLIENT_FOUND_ROWS
    | CLIENT_LONG_FLAG
    | CLIENT_CONNECT_WITH_DB
    | CLIENT_PROTOCOL_41
    | CLIENT_TRANSACTIONS
    | CLIENT_SECURE_CONNECTION
    | CLIENT_MULTI_RESULTS
    | CLIENT_PS_MULTI_RESULTS
    | CLIENT_PLUGIN_AUTH
    | CLIENT_CONNECT_ATTRS
    | CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA
    | CLIENT_DEPRECATE_EOF;

/// `SERVER_STATUS_AUTOCOMMIT`, the only status flag ever reported.
const STATUS_AUTOCOMMIT: u16 = 0x0002;
/// `utf8mb4_general_ci`.
const UTF8MB4: u8 = 45;
/// `binary`, the character set of numeric columns.
const BINARY: u16 = 63;
/// `MYSQL_TYPE_LONGLONG`.
const TYPE_LONGLONG: u8 = 0x08;
/// `MYSQL_TYPE_VAR_STRING`.
const TYPE_VAR_STRING: u8 = 0xFD;
/// The only auth plugin spoken.
pub const NATIVE_PASSWORD: &str = "mysql_native_password";
/// Largest payload of one packet.
const MAX_PAYLOAD: usize = 0xFF_FFFF;

const COM_QUIT: u8 = 0x01;
const COM_INIT_DB: u8 = 0x02;
const COM_QUERY: u8 = 0x03;
const COM_PING: u8 = 0x0E;
const COM_RESET_CONNECTION: u8 = 0x1F;

/// An ERR packet's contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// Error number, e.g. 1045.
    pub code: u16,
    /// Five-character SQL state, e.g. `28000`.
    pub state: String,
    /// Message.
    pub message: String,
}

impl ServerError {
    /// An error with `code`, SQL state `state` and `message`.
    pub fn new(code: u16, state: &str, message: impl Into<String>) -> Self {
        Self {
            code,
            state: state.to_owned(),
            message: message.into(),
        }
    }
}

/// A column of a text result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name (and alias) of the column.
    pub name: String,
    /// A `BIGINT` column (binary character set) rather than a `VARCHAR` one. Values travel as text
    /// either way.
    pub numeric: bool,
}

/// The answer to a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// An OK packet.
    Ok {
        /// Affected rows.
        affected_rows: u64,
    },
    /// A text result set; `None` cells are NULL.
    Rows {
        columns: Vec<Column>,
        rows: Vec<Vec<Option<String>>>,
    },
    /// An ERR packet.
    Err(ServerError),
}

/// The SQL side of a connection.
pub trait Handler: Send {
    /// The password `user` logs in with, `None` for a user that does not exist (access denied).
    fn password(&mut self, user: &str) -> Option<String>;
    /// Runs one COM_QUERY.
    fn query(&mut self, sql: &str) -> Reply;
    /// COM_INIT_DB (`USE db`) and a database named in the handshake response: OK by default.
    fn init_db(&mut self, _database: &str) -> Reply {
        Reply::Ok { affected_rows: 0 }
    }
}

/// What the server says about itself in the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// Server version string; clients parse `X.Y.Z` from its start.
    pub server_version: String,
    /// Connection id.
    pub connection_id: u32,
    /// Capabilities offered ([`SERVER_CAPABILITIES`] normally).
    pub capabilities: u32,
}

/// Packet framing over one socket: 3-byte length, sequence id, payload.
struct Wire {
    sock: TcpStream,
    seq: u8,
    out: Vec<u8>,
}

impl Wire {
    /// Reads one logical packet (joining 16 MiB continuation packets); the next packet written
    /// continues its sequence.
    async fn read(&mut self) -> std::io::Result<Vec<u8>> {
        let mut payload = Vec::new();
        loop {
            let mut header = [0u8; 4];
            self.sock.read_exact(&mut header).await?;
            let length =
                usize::from(header[0]) | usize::from(header[1]) << 8 | usize::from(header[2]) << 16;
            self.seq = header[3].wrapping_add(1);
            let start = payload.len();
            payload.resize(start + length, 0);
            self.sock.read_exact(&mut payload[start..]).await?;
            if length < MAX_PAYLOAD {
                return Ok(payload);
            }
        }
    }

    /// Queues one logical packet (split as the protocol requires).
    fn push(&mut self, payload: &[u8]) {
        let mut rest = payload;
        loop {
            let chunk = &rest[..rest.len().min(MAX_PAYLOAD)];
            let length = u32::try_from(chunk.len()).expect("at most 16 MiB");
            self.out.extend_from_slice(&length.to_le_bytes()[..3]);
            self.out.push(self.seq);
            self.seq = self.seq.wrapping_add(1);
            self.out.extend_from_slice(chunk);
            rest = &rest[chunk.len()..];
            if chunk.len() < MAX_PAYLOAD {
                return;
            }
        }
    }

    /// Sends every queued packet.
    async fn flush(&mut self) -> std::io::Result<()> {
        let out = std::mem::take(&mut self.out);
        self.sock.write_all(&out).await
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(buf: &mut Vec<u8>, n: u64) {
    match n {
        0..=250 => buf.push(u8::try_from(n).expect("small")),
        251..=0xFFFF => {
            buf.push(0xFC);
            buf.extend_from_slice(&u16::try_from(n).expect("two bytes").to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            buf.push(0xFD);
            buf.extend_from_slice(&u32::try_from(n).expect("three bytes").to_le_bytes()[..3]);
        }
        _ => {
            buf.push(0xFE);
            buf.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string.
pub fn put_lenenc_str(buf: &mut Vec<u8>, s: &[u8]) {
    put_lenenc_int(buf, s.len() as u64);
    buf.extend_from_slice(s);
}

/// Reads a length-encoded integer at `*at`.
fn lenenc_int(buf: &[u8], at: &mut usize) -> Option<u64> {
    let first = *buf.get(*at)?;
    *at += 1;
    let width = match first {
        0..=250 => return Some(u64::from(first)),
        0xFC => 2,
        0xFD => 3,
        0xFE => 8,
        _ => return None,
    };
    let bytes = buf.get(*at..*at + width)?;
    *at += width;
    let mut le = [0u8; 8];
    le[..width].copy_from_slice(bytes);
    Some(u64::from_le_bytes(le))
}

/// Reads a NUL-terminated string at `*at`.
fn nul_str<'a>(buf: &'a [u8], at: &mut usize) -> Option<&'a [u8]> {
    let rest = buf.get(*at..)?;
    let end = rest.iter().position(|b| *b == 0)?;
    *at += end + 1;
    Some(&rest[..end])
}

/// The Handshake v10 payload offering `mysql_native_password` with a 20-byte `scramble`.
pub fn handshake(greeting: &Greeting, scramble: &[u8; 20]) -> Vec<u8> {
    let caps = greeting.capabilities.to_le_bytes();
    let mut p = vec![10u8];
    p.extend_from_slice(greeting.server_version.as_bytes());
    p.push(0);
    p.extend_from_slice(&greeting.connection_id.to_le_bytes());
    p.extend_from_slice(&scramble[..8]);
    p.push(0); // filler
    p.extend_from_slice(&caps[..2]);
    p.push(UTF8MB4);
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&caps[2..]);
    p.push(21); // length of the auth plugin data, terminator included
    p.extend_from_slice(&[0; 10]); // reserved
    p.extend_from_slice(&scramble[8..]);
    p.push(0);
    p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
    p.push(0);
    p
}

/// The fields of a HandshakeResponse41 that matter here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandshakeResponse {
    /// The client's capability flags.
    pub capabilities: u32,
    /// User name.
    pub user: String,
    /// Auth response (for `mysql_native_password`, 20 bytes or empty for no password).
    pub auth: Vec<u8>,
    /// Database to use (`CLIENT_CONNECT_WITH_DB`).
    pub database: Option<String>,
    /// Auth plugin the client used (`CLIENT_PLUGIN_AUTH`).
    pub plugin: Option<String>,
}

/// Parses a HandshakeResponse41; `None` for anything else (an SSL request, protocol 3.20).
pub fn parse_handshake_response(p: &[u8]) -> Option<HandshakeResponse> {
    let capabilities = u32::from_le_bytes(p.get(..4)?.try_into().ok()?);
    if capabilities & CLIENT_PROTOCOL_41 == 0 || p.len() <= 32 {
        return None;
    }
    let mut at = 32; // capabilities, max packet size, character set, 23 reserved bytes
    let user = String::from_utf8_lossy(nul_str(p, &mut at)?).into_owned();
    let auth = if capabilities & CLIENT_PLUGIN_AUTH_LENENC_CLIENT_DATA != 0 {
        let n = usize::try_from(lenenc_int(p, &mut at)?).ok()?;
        let bytes = p.get(at..at + n)?.to_vec();
        at += n;
        bytes
    } else if capabilities & CLIENT_SECURE_CONNECTION != 0 {
        let n = usize::from(*p.get(at)?);
        at += 1;
        let bytes = p.get(at..at + n)?.to_vec();
        at += n;
        bytes
    } else {
        nul_str(p, &mut at)?.to_vec()
    };
    let database = if capabilities & CLIENT_CONNECT_WITH_DB != 0 {
        Some(String::from_utf8_lossy(nul_str(p, &mut at)?).into_owned())
    } else {
        None
    };
    let plugin = if capabilities & CLIENT_PLUGIN_AUTH != 0 {
        // Some clients omit the terminator of the last field.
        match nul_str(p, &mut at) {
            Some(name) => Some(String::from_utf8_lossy(name).into_owned()),
            None => Some(String::from_utf8_lossy(p.get(at..)?).into_owned()),
        }
    } else {
        None
    };
    Some(HandshakeResponse {
        capabilities,
        user,
        auth,
        database,
        plugin,
    })
}

/// The `mysql_native_password` answer to `scramble` for `password`:
/// `SHA1(password) XOR SHA1(scramble + SHA1(SHA1(password)))`; empty for an empty password.
pub fn native_password_response(password: &str, scramble: &[u8]) -> Vec<u8> {
    if password.is_empty() {
        return Vec::new();
    }
    let stage1 = Sha1::digest(password.as_bytes());
    let stage2 = Sha1::digest(stage1);
    let mut hasher = Sha1::new();
    hasher.update(scramble);
    hasher.update(stage2);
    let mask = hasher.finalize();
    stage1.iter().zip(mask.iter()).map(|(a, b)| a ^ b).collect()
}

/// A fresh 20-byte scramble of printable ASCII characters, as MySQL servers send.
pub fn new_scramble() -> [u8; 20] {
    use std::hash::{BuildHasher, Hasher};
    // The standard library's randomly keyed hasher is random enough for a simulator.
    let state = std::collections::hash_map::RandomState::new();
    let mut out = [0u8; 20];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = state.build_hasher();
        h.write_usize(i);
        for (b, r) in chunk.iter_mut().zip(h.finish().to_le_bytes()) {
            *b = 0x21 + r % 94;
        }
    }
    out
}

/// An OK packet (`header` 0x00, or 0xFE when it ends a result set under `CLIENT_DEPRECATE_EOF`).
fn ok_packet(header: u8, affected_rows: u64) -> Vec<u8> {
    let mut p = vec![header];
    put_lenenc_int(&mut p, affected_rows);
    put_lenenc_int(&mut p, 0); // last insert id
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes()); // warnings
    p
}

/// An EOF packet (protocol 4.1).
fn eof_packet() -> Vec<u8> {
    let mut p = vec![0xFE];
    p.extend_from_slice(&0u16.to_le_bytes()); // warnings
    p.extend_from_slice(&STATUS_AUTOCOMMIT.to_le_bytes());
    p
}

/// An ERR packet (protocol 4.1: with `#` and the SQL state).
pub fn err_packet(e: &ServerError) -> Vec<u8> {
    let mut p = vec![0xFF];
    p.extend_from_slice(&e.code.to_le_bytes());
    p.push(b'#');
    let mut state = e.state.as_bytes().to_vec();
    state.resize(5, b'0');
    p.extend_from_slice(&state);
    p.extend_from_slice(e.message.as_bytes());
    p
}

/// A ColumnDefinition41.
fn column_definition(column: &Column) -> Vec<u8> {
    let mut p = Vec::new();
    for part in ["def", "", "", ""] {
        put_lenenc_str(&mut p, part.as_bytes()); // catalog, schema, table, original table
    }
    put_lenenc_str(&mut p, column.name.as_bytes());
    put_lenenc_str(&mut p, column.name.as_bytes());
    p.push(0x0C); // length of the fixed fields
    let (charset, length, kind, flags) = if column.numeric {
        // NOT_NULL is not claimed; BINARY_FLAG | NUM_FLAG.
        (BINARY, 20u32, TYPE_LONGLONG, 0x0080u16 | 0x8000)
    } else {
        (u16::from(UTF8MB4), 1024, TYPE_VAR_STRING, 0)
    };
    p.extend_from_slice(&charset.to_le_bytes());
    p.extend_from_slice(&length.to_le_bytes());
    p.push(kind);
    p.extend_from_slice(&flags.to_le_bytes());
    p.push(0); // decimals
    p.extend_from_slice(&[0, 0]); // filler
    p
}

/// Queues the packets answering a COM_QUERY with `reply`, per the negotiated `capabilities`.
fn push_reply(wire: &mut Wire, capabilities: u32, reply: &Reply) {
    match reply {
        Reply::Ok { affected_rows } => wire.push(&ok_packet(0x00, *affected_rows)),
        Reply::Err(e) => wire.push(&err_packet(e)),
        Reply::Rows { columns, rows } => {
            let deprecate_eof = capabilities & CLIENT_DEPRECATE_EOF != 0;
            let mut count = Vec::new();
            put_lenenc_int(&mut count, columns.len() as u64);
            wire.push(&count);
            for column in columns {
                wire.push(&column_definition(column));
            }
            if !deprecate_eof {
                wire.push(&eof_packet());
            }
            for row in rows {
                let mut p = Vec::new();
                for cell in row {
                    match cell {
                        None => p.push(0xFB),
                        Some(text) => put_lenenc_str(&mut p, text.as_bytes()),
                    }
                }
                wire.push(&p);
            }
            if deprecate_eof {
                wire.push(&ok_packet(0xFE, 0));
            } else {
                wire.push(&eof_packet());
            }
        }
    }
}

/// ERR 1045, as MySQL words it.
pub fn access_denied(user: &str, host: &str, with_password: bool) -> ServerError {
    let using = if with_password { "YES" } else { "NO" };
    ServerError::new(
        1045,
        "28000",
        format!("Access denied for user '{user}'@'{host}' (using password: {using})"),
    )
}

/// Serves one client connection: the handshake (logging in with `handler`'s password), then
/// commands until COM_QUIT or the connection closes.
pub async fn serve<H: Handler>(sock: TcpStream, greeting: Greeting, mut handler: H) {
    let peer = sock
        .peer_addr()
        .map_or_else(|_| IpAddr::from([127, 0, 0, 1]), |a| a.ip());
    let mut wire = Wire {
        sock,
        seq: 0,
        out: Vec::new(),
    };
    let Some(capabilities) = login(&mut wire, &greeting, &mut handler, peer).await else {
        return;
    };
    loop {
        let Ok(packet) = wire.read().await else {
            return;
        };
        let Some((&command, body)) = packet.split_first() else {
            return;
        };
        let text = || String::from_utf8_lossy(body).into_owned();
        match command {
            COM_QUIT => return,
            COM_PING | COM_RESET_CONNECTION => wire.push(&ok_packet(0x00, 0)),
            COM_INIT_DB => {
                let reply = handler.init_db(&text());
                push_reply(&mut wire, capabilities, &reply);
            }
            COM_QUERY => {
                let reply = handler.query(&text());
                push_reply(&mut wire, capabilities, &reply);
            }
            other => wire.push(&err_packet(&ServerError::new(
                1047,
                "08S01",
                format!("Unknown command {other:#04x}"),
            ))),
        }
        if wire.flush().await.is_err() {
            return;
        }
    }
}

/// The connection phase; the negotiated capabilities once the client is logged in.
async fn login<H: Handler>(
    wire: &mut Wire,
    greeting: &Greeting,
    handler: &mut H,
    peer: IpAddr,
) -> Option<u32> {
    let mut scramble = new_scramble();
    wire.push(&handshake(greeting, &scramble));
    wire.flush().await.ok()?;
    let packet = wire.read().await.ok()?;
    let Some(response) = parse_handshake_response(&packet) else {
        let e = ServerError::new(1043, "08S01", "Bad handshake");
        wire.push(&err_packet(&e));
        let _ = wire.flush().await;
        return None;
    };
    let capabilities = response.capabilities & greeting.capabilities;
    let mut auth = response.auth.clone();
    if capabilities & CLIENT_PLUGIN_AUTH != 0
        && response
            .plugin
            .as_deref()
            .is_some_and(|p| p != NATIVE_PASSWORD)
    {
        // Auth switch request: ask for mysql_native_password with a new scramble.
        scramble = new_scramble();
        let mut p = vec![0xFE];
        p.extend_from_slice(NATIVE_PASSWORD.as_bytes());
        p.push(0);
        p.extend_from_slice(&scramble);
        p.push(0);
        wire.push(&p);
        wire.flush().await.ok()?;
        auth = wire.read().await.ok()?;
    }
    let accepted = handler
        .password(&response.user)
        .is_some_and(|password| native_password_response(&password, &scramble) == auth);
    if !accepted {
        let e = access_denied(&response.user, &peer.to_string(), !auth.is_empty());
        wire.push(&err_packet(&e));
        let _ = wire.flush().await;
        return None;
    }
    if let Some(database) = &response.database {
        let reply = handler.init_db(database);
        if let Reply::Err(e) = reply {
            wire.push(&err_packet(&e));
            let _ = wire.flush().await;
            return None;
        }
    }
    wire.push(&ok_packet(0x00, 0));
    wire.flush().await.ok()?;
    Some(capabilities)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::prelude::Queryable;
    use mysql_async::{Conn, OptsBuilder, Row, Value};
    use tokio::net::TcpListener;

    /// Knows `root`/`secret`; answers what mysql_async asks on connect and a few queries by text.
    struct Fixed;

    impl Handler for Fixed {
        fn password(&mut self, user: &str) -> Option<String> {
            (user == "root").then(|| "secret".to_owned())
        }

        fn query(&mut self, sql: &str) -> Reply {
            let text = |name: &str| Column {
                name: name.to_owned(),
                numeric: false,
            };
            match sql {
                "SELECT @@max_allowed_packet,@@wait_timeout,@@socket" => Reply::Rows {
                    columns: vec![
                        Column {
                            name: "@@max_allowed_packet".into(),
                            numeric: true,
                        },
                        Column {
                            name: "@@wait_timeout".into(),
                            numeric: true,
                        },
                        text("@@socket"),
                    ],
                    rows: vec![vec![Some("16777216".into()), Some("28800".into()), None]],
                },
                "SELECT 'a', NULL" => Reply::Rows {
                    columns: vec![text("a"), text("NULL")],
                    rows: vec![
                        vec![Some("online".into()), None],
                        vec![Some(String::new()), Some("x".repeat(300))],
                    ],
                },
                "SELECT nothing" => Reply::Rows {
                    columns: vec![text("nothing")],
                    rows: Vec::new(),
                },
                "SET NAMES utf8mb4" => Reply::Ok { affected_rows: 0 },
                other => Reply::Err(ServerError::new(
                    1064,
                    "42000",
                    format!("You have an error in your SQL syntax near '{other}'"),
                )),
            }
        }
    }

    /// A server of [`Fixed`] offering `capabilities`; its address.
    async fn server(capabilities: u32) -> std::net::SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let mut id = 0;
            while let Ok((sock, _)) = listener.accept().await {
                id += 1;
                let greeting = Greeting {
                    server_version: "5.7.32".into(),
                    connection_id: id,
                    capabilities,
                };
                tokio::spawn(serve(sock, greeting, Fixed));
            }
        });
        addr
    }

    fn opts(addr: std::net::SocketAddr, password: &str) -> OptsBuilder {
        OptsBuilder::default()
            .ip_or_hostname(addr.ip().to_string())
            .tcp_port(addr.port())
            .user(Some("root"))
            .pass(Some(password))
    }

    async fn session(capabilities: u32) {
        let addr = server(capabilities).await;
        // Default options: mysql_async reads @@max_allowed_packet, @@wait_timeout and @@socket.
        let mut conn = Conn::new(opts(addr, "secret")).await.unwrap();
        assert_eq!(conn.server_version(), (5, 7, 32));
        conn.ping().await.unwrap();
        conn.query_drop("SET NAMES utf8mb4").await.unwrap();
        let rows: Vec<Row> = conn.query("SELECT 'a', NULL").await.unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].columns_ref()[0].name_str(), "a");
        assert_eq!(rows[0].as_ref(0), Some(&Value::Bytes(b"online".to_vec())));
        assert_eq!(rows[0].as_ref(1), Some(&Value::NULL));
        assert_eq!(rows[1].as_ref(0), Some(&Value::Bytes(Vec::new())));
        assert_eq!(rows[1].as_ref(1), Some(&Value::Bytes(vec![b'x'; 300])));
        let none: Vec<Row> = conn.query("SELECT nothing").await.unwrap();
        assert!(none.is_empty());
        let settings: Option<(i64, i64, Option<String>)> = conn
            .query_first("SELECT @@max_allowed_packet,@@wait_timeout,@@socket")
            .await
            .unwrap();
        assert_eq!(settings, Some((16_777_216, 28_800, None)));
        match conn.query_drop("FROB").await.unwrap_err() {
            mysql_async::Error::Server(e) => {
                assert_eq!((e.code, e.state.as_str()), (1064, "42000"));
                assert!(e.message.contains("FROB"), "{}", e.message);
            }
            other => panic!("not a server error: {other:?}"),
        }
        // The connection is still usable after an error.
        conn.query_drop("SET NAMES utf8mb4").await.unwrap();
        conn.disconnect().await.unwrap();

        let err = Conn::new(opts(addr, "wrong")).await.unwrap_err();
        match err {
            mysql_async::Error::Server(e) => {
                assert_eq!((e.code, e.state.as_str()), (1045, "28000"));
                assert_eq!(
                    e.message,
                    "Access denied for user 'root'@'127.0.0.1' (using password: YES)"
                );
            }
            other => panic!("not a server error: {other:?}"),
        }
        let with_db = opts(addr, "secret").db_name(Some("kubedb_system"));
        Conn::new(with_db)
            .await
            .unwrap()
            .disconnect()
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn mysql_async_logs_in_and_queries_with_deprecate_eof() {
        session(SERVER_CAPABILITIES).await;
    }

    #[tokio::test]
    async fn mysql_async_logs_in_and_queries_with_eof_packets() {
        session(SERVER_CAPABILITIES & !CLIENT_DEPRECATE_EOF).await;
    }

    #[test]
    fn handshake_responses_parse_per_capabilities() {
        let scramble = *b"abcdefghijklmnopqrst";
        let auth = native_password_response("pw", &scramble);
        assert_eq!(auth.len(), 20);
        assert!(native_password_response("", &scramble).is_empty());
        let mut p = (CLIENT_PROTOCOL_41
            | CLIENT_SECURE_CONNECTION
            | CLIENT_CONNECT_WITH_DB
            | CLIENT_PLUGIN_AUTH)
            .to_le_bytes()
            .to_vec();
        p.extend_from_slice(&[0; 28]);
        p.extend_from_slice(b"root\0");
        p.push(20);
        p.extend_from_slice(&auth);
        p.extend_from_slice(b"db\0mysql_native_password\0");
        let r = parse_handshake_response(&p).unwrap();
        assert_eq!(
            (r.user.as_str(), r.database.as_deref(), r.plugin.as_deref()),
            ("root", Some("db"), Some(NATIVE_PASSWORD))
        );
        assert_eq!(r.auth, auth);
        // An SSL request (32 bytes) and protocol 3.20 are not handshake responses.
        assert_eq!(parse_handshake_response(&p[..32]), None);
        let mut old = p.clone();
        old[1] &= !0x02;
        assert_eq!(parse_handshake_response(&old), None);
    }

    #[test]
    fn lenenc_integers_round_trip() {
        for n in [
            0u64,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut buf = Vec::new();
            put_lenenc_int(&mut buf, n);
            let mut at = 0;
            assert_eq!(lenenc_int(&buf, &mut at), Some(n));
            assert_eq!(at, buf.len());
        }
    }

    #[test]
    fn scrambles_are_printable_and_differ() {
        let a = new_scramble();
        assert!(a.iter().all(|b| (0x21..0x7F).contains(b)));
        assert_ne!(a, new_scramble());
    }
}
