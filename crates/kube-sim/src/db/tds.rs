//! The server side of TDS 7.4, as far as the simulated SQL Server ([`super::mssql`]) and the
//! scripted peers of the client tests need it (no SQL Server can run here): message framing,
//! PRELOGIN and LOGINACK answers, the login name and password of a LOGIN7, ERROR and DONE tokens,
//! result sets of int, bigint and nvarchar columns, and the text of a SQL batch. The encodings
//! follow the TDS specification ([MS-TDS]) as far as tiberius reads and writes them, nothing more.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Message type of PRELOGIN.
pub const PRELOGIN: u8 = 0x12;
/// Message type of LOGIN7.
pub const LOGIN7: u8 = 0x10;
/// Message type of a server's tabular result.
pub const TABULAR_RESULT: u8 = 0x04;
/// Message type of a SQL batch.
pub const SQL_BATCH: u8 = 0x01;
/// PRELOGIN ENCRYPTION value: encryption not supported.
pub const ENCRYPT_NOT_SUP: u8 = 0x02;
/// PRELOGIN ENCRYPTION value: encryption required.
pub const ENCRYPT_REQ: u8 = 0x03;

/// Reads one TDS message (every packet up to end-of-message) and returns its type and payload.
pub async fn read_message(sock: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let mut header = [0u8; 8];
        sock.read_exact(&mut header).await?;
        let length = usize::from(u16::from_be_bytes([header[2], header[3]]));
        let mut body = vec![0u8; length.saturating_sub(8)];
        sock.read_exact(&mut body).await?;
        payload.extend_from_slice(&body);
        if header[1] & 0x01 == 0x01 {
            return Ok((header[0], payload));
        }
    }
}

/// Writes one TDS message, split into packets of at most 4,096 bytes (the default packet size).
pub async fn write_message(sock: &mut TcpStream, kind: u8, payload: &[u8]) -> std::io::Result<()> {
    let chunks: Vec<&[u8]> = payload.chunks(4088).collect();
    let count = chunks.len().max(1);
    for i in 0..count {
        let chunk = chunks.get(i).copied().unwrap_or_default();
        let last = i + 1 == count;
        let length = u16::try_from(chunk.len() + 8).expect("packets are small");
        let mut packet = vec![kind, u8::from(last)];
        packet.extend_from_slice(&length.to_be_bytes());
        packet.extend_from_slice(&[0, 0, 1, 0]);
        packet.extend_from_slice(chunk);
        sock.write_all(&packet).await?;
    }
    Ok(())
}

/// `s` as UTF-16LE bytes.
pub fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

/// A PRELOGIN response: VERSION (SQL Server 2022) and the given ENCRYPTION value.
pub fn prelogin_response(encryption: u8) -> Vec<u8> {
    let mut p = Vec::new();
    // Option table: VERSION at 11 (6 bytes), ENCRYPTION at 17 (1 byte), terminator.
    p.extend_from_slice(&[0x00, 0, 11, 0, 6]);
    p.extend_from_slice(&[0x01, 0, 17, 0, 1]);
    p.push(0xFF);
    p.extend_from_slice(&0x1000_0FA0_u32.to_be_bytes());
    p.extend_from_slice(&0u16.to_be_bytes());
    p.push(encryption);
    p
}

/// A final DONE token; `error` sets the error bit, `rows` the row count (with DONE_COUNT).
pub fn done(error: bool, rows: Option<u64>) -> Vec<u8> {
    let mut status = 0u16;
    if error {
        status |= 0x0002;
    }
    if rows.is_some() {
        status |= 0x0010;
    }
    let mut p = vec![0xFD];
    p.extend_from_slice(&status.to_le_bytes());
    p.extend_from_slice(&0u16.to_le_bytes()); // current command
    p.extend_from_slice(&rows.unwrap_or(0).to_le_bytes());
    p
}

/// An ERROR token with `code`, severity `class` and `message`, from server `sql-0`.
pub fn error_token(code: u32, class: u8, message: &str) -> Vec<u8> {
    let server = "sql-0";
    let mut body = Vec::new();
    body.extend_from_slice(&code.to_le_bytes());
    body.push(1); // state
    body.push(class);
    body.extend_from_slice(
        &u16::try_from(message.encode_utf16().count())
            .expect("short message")
            .to_le_bytes(),
    );
    body.extend_from_slice(&utf16(message));
    body.push(u8::try_from(server.encode_utf16().count()).expect("short name"));
    body.extend_from_slice(&utf16(server));
    body.push(0); // no procedure
    body.extend_from_slice(&1u32.to_le_bytes()); // line number
    let mut p = vec![0xAA];
    p.extend_from_slice(
        &u16::try_from(body.len())
            .expect("short token")
            .to_le_bytes(),
    );
    p.extend_from_slice(&body);
    p
}

/// LOGINACK (TDS 7.4, SQL Server 2022) and DONE.
pub fn login_ack() -> Vec<u8> {
    let prog = "Microsoft SQL Server";
    let mut body = vec![1u8]; // interface: SQL
    body.extend_from_slice(&0x7400_0004_u32.to_be_bytes());
    body.push(u8::try_from(prog.encode_utf16().count()).expect("short name"));
    body.extend_from_slice(&utf16(prog));
    body.extend_from_slice(&0x1000_0FA0_u32.to_le_bytes());
    let mut p = vec![0xAD];
    p.extend_from_slice(
        &u16::try_from(body.len())
            .expect("short token")
            .to_le_bytes(),
    );
    p.extend_from_slice(&body);
    p.extend(done(false, None));
    p
}

/// A column type of [`result_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Col {
    /// `int` (INTN, 4 bytes).
    Int,
    /// `bigint` (INTN, 8 bytes).
    BigInt,
    /// `nvarchar(128)`.
    Text,
}

/// A value of [`result_set`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// An `int` or `bigint` value.
    Int(i64),
    /// An `nvarchar` value.
    Text(&'a str),
}

/// COLMETADATA for `columns`, one ROW per entry of `rows`, then DONE with the row count.
pub fn result_set(columns: &[(&str, Col)], rows: &[Vec<Cell<'_>>]) -> Vec<u8> {
    let mut p = vec![0x81];
    p.extend_from_slice(
        &u16::try_from(columns.len())
            .expect("few columns")
            .to_le_bytes(),
    );
    for (name, col) in columns {
        p.extend_from_slice(&0u32.to_le_bytes()); // user type
        p.extend_from_slice(&0x0001u16.to_le_bytes()); // flags: nullable
        match col {
            Col::Int => p.extend_from_slice(&[0x26, 4]),
            Col::BigInt => p.extend_from_slice(&[0x26, 8]),
            Col::Text => {
                p.push(0xE7);
                p.extend_from_slice(&256u16.to_le_bytes()); // max length in bytes
                p.extend_from_slice(&[0x09, 0x04, 0xD0, 0x00, 0x34]); // collation
            }
        }
        p.push(u8::try_from(name.encode_utf16().count()).expect("short name"));
        p.extend_from_slice(&utf16(name));
    }
    for row in rows {
        p.push(0xD1); // ROW
        for ((_, col), cell) in columns.iter().zip(row) {
            match (col, cell) {
                (Col::Int | Col::BigInt, Cell::Null) => p.push(0),
                (Col::Int, Cell::Int(v)) => {
                    p.push(4);
                    p.extend_from_slice(&i32::try_from(*v).expect("an int").to_le_bytes());
                }
                (Col::BigInt, Cell::Int(v)) => {
                    p.push(8);
                    p.extend_from_slice(&v.to_le_bytes());
                }
                (Col::Text, Cell::Null) => p.extend_from_slice(&0xFFFFu16.to_le_bytes()),
                (Col::Text, Cell::Text(s)) => {
                    let bytes = utf16(s);
                    p.extend_from_slice(&u16::try_from(bytes.len()).expect("short").to_le_bytes());
                    p.extend_from_slice(&bytes);
                }
                _ => panic!("cell {cell:?} does not fit column {col:?}"),
            }
        }
    }
    p.extend(done(false, Some(rows.len() as u64)));
    p
}

/// The login name and password of a LOGIN7 payload ([MS-TDS] 2.2.6.4: `ibUserName`/`cchUserName`
/// at offset 40, `ibPassword`/`cchPassword` at 44, offsets from the start of the payload,
/// lengths in UTF-16 units; each password byte has its nibbles swapped and is XORed with 0xA5).
pub fn login_credentials(payload: &[u8]) -> Option<(String, String)> {
    let field = |at: usize| -> Option<&[u8]> {
        let offset = usize::from(u16::from_le_bytes([
            *payload.get(at)?,
            *payload.get(at + 1)?,
        ]));
        let units = usize::from(u16::from_le_bytes([
            *payload.get(at + 2)?,
            *payload.get(at + 3)?,
        ]));
        payload.get(offset..offset + units * 2)
    };
    let decode = |bytes: &[u8]| -> Option<String> {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]))
            .collect();
        String::from_utf16(&units).ok()
    };
    let user = decode(field(40)?)?;
    let clear: Vec<u8> = field(44)?
        .iter()
        .map(|b| {
            let x = b ^ 0xA5;
            x.rotate_left(4)
        })
        .collect();
    Some((user, decode(&clear)?))
}

/// The SQL text of a SQL batch payload (ALL_HEADERS skipped).
pub fn batch_text(payload: &[u8]) -> String {
    let headers = u32::from_le_bytes(payload[..4].try_into().expect("ALL_HEADERS length")) as usize;
    let units: Vec<u16> = payload[headers..]
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&units).expect("UTF-16 batch")
}
