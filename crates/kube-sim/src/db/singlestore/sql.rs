//! What the simulated SingleStore understands of SQL: the cluster-management statements of the
//! contract between the product's agent and kube-sim (docs/singlestore-sim-contract.md), shaped
//! as SingleStore documents them ("BOOTSTRAP AGGREGATOR", "ADD LEAF", "REMOVE LEAF", "PROMOTE
//! AGGREGATOR ... TO MASTER", ... pages); the observation statements (`SHOW AGGREGATORS`, `SHOW
//! LEAVES`, `SHOW DATABASES EXTENDED`, `SELECT @@...`); what mysql_async sends on connect; and the
//! provisioner's SQL health check (`SELECT 1`, `SHOW VARIABLES LIKE ...`, the `kubedb_system.kv`
//! table written and read back). Keywords are case-insensitive and a trailing `;` is optional.
//! Anything else is a syntax error (1064), so a statement the agent shapes differently fails here
//! instead of being silently accepted.

/// A lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word (keyword or identifier), as written.
    Word(String),
    /// A quoted identifier `` `...` ``, unescaped.
    Ident(String),
    /// A string literal `'...'`, unescaped (`''` and backslash escapes).
    Str(String),
    /// An unsigned integer, as written.
    Num(String),
    /// A system variable `@@name` (or `@@session.name`, `@@global.name`), name as written.
    SysVar(String),
    /// Any other character.
    Punct(char),
}

/// Splits `sql` into tokens; `Err` names what cannot be read.
pub fn tokenize(sql: &str) -> Result<Vec<Token>, String> {
    let chars: Vec<char> = sql.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c == '\'' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unclosed quotation mark after '{s}'")),
                    Some('\\') => {
                        let escaped = chars.get(i + 1).ok_or("unclosed quotation mark")?;
                        s.push(match escaped {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            '0' => '\0',
                            other => *other,
                        });
                        i += 2;
                    }
                    Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                        s.push('\'');
                        i += 2;
                    }
                    Some('\'') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Str(s));
        } else if c == '`' {
            i += 1;
            let mut s = String::new();
            loop {
                match chars.get(i) {
                    None => return Err(format!("unclosed identifier after `{s}`")),
                    Some('`') if chars.get(i + 1) == Some(&'`') => {
                        s.push('`');
                        i += 2;
                    }
                    Some('`') => {
                        i += 1;
                        break;
                    }
                    Some(&other) => {
                        s.push(other);
                        i += 1;
                    }
                }
            }
            out.push(Token::Ident(s));
        } else if c == '@' && chars.get(i + 1) == Some(&'@') {
            let start = i + 2;
            i = start;
            while chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '$'))
            {
                i += 1;
            }
            if i == start {
                return Err("a system variable needs a name after @@".into());
            }
            out.push(Token::SysVar(chars[start..i].iter().collect()));
        } else if c.is_ascii_digit() {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            out.push(Token::Num(chars[start..i].iter().collect()));
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '$'))
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

/// A node named in a cluster statement: `'<host>':<port>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    pub host: String,
    pub port: u16,
}

/// One item of a `SELECT` without `FROM`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SelectItem {
    /// An integer literal (`SELECT 1`).
    Number(String),
    /// A string literal.
    Text(String),
    /// `NULL`.
    Null,
    /// A system variable, by its name without `@@` or a `session.`/`global.` scope.
    Variable(String),
}

/// A recognised statement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Statement {
    /// `SELECT <items>`: each item with its column name (the alias, or the text as written).
    Select(Vec<(String, SelectItem)>),
    /// `SHOW [GLOBAL | SESSION] VARIABLES [LIKE '<pattern>']`.
    ShowVariables { like: Option<String> },
    /// `SET` of session variables (`SET NAMES ...`, `SET [SESSION] x = ...`, `SET @@x = ...`).
    SetSession,
    /// `SET LICENSE = '<key>'`.
    SetLicense { key: String },
    /// `SHOW AGGREGATORS`.
    ShowAggregators,
    /// `SHOW LEAVES`.
    ShowLeaves,
    /// `SHOW DATABASES EXTENDED`.
    ShowDatabasesExtended,
    /// `BOOTSTRAP AGGREGATOR '<host>'`.
    Bootstrap { host: String },
    /// `ADD LEAF user[:'password']@'host':port` (leaf) or `ADD AGGREGATOR ...` (not leaf).
    Add {
        leaf: bool,
        user: String,
        password: String,
        address: Address,
    },
    /// `REMOVE LEAF 'host':port` (leaf) or `REMOVE AGGREGATOR 'host':port`.
    Remove { leaf: bool, address: Address },
    /// `PROMOTE AGGREGATOR 'host':port TO MASTER`.
    Promote { address: Address },
    /// `AGGREGATOR SET AS MASTER`.
    SetAsMaster,
    /// `CREATE DATABASE [IF NOT EXISTS] <name>`.
    CreateDatabase { name: String, if_not_exists: bool },
    /// `CREATE TABLE [IF NOT EXISTS] <db>.<table> (<columns>, PRIMARY KEY (<column>))`.
    CreateTable {
        database: String,
        table: String,
        if_not_exists: bool,
        columns: Vec<String>,
        key: String,
    },
    /// `INSERT INTO <db>.<table> (<columns>) VALUES (<strings>) [ON DUPLICATE KEY UPDATE
    /// <column> = VALUES(<column>), ...]`.
    Insert {
        database: String,
        table: String,
        columns: Vec<String>,
        values: Vec<String>,
        /// Columns updated when the key exists (`ON DUPLICATE KEY UPDATE`); `None` without it.
        update: Option<Vec<String>>,
    },
    /// `SELECT <columns> FROM <db>.<table> [WHERE <column> = '<value>']`.
    SelectFrom {
        columns: Vec<String>,
        database: String,
        table: String,
        filter: Option<(String, String)>,
    },
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
        self.tokens[self.at.min(self.tokens.len())..]
            .iter()
            .map(|t| match t {
                Token::Word(w) | Token::Num(w) => w.clone(),
                Token::Ident(i) => format!("`{i}`"),
                Token::Str(s) => format!("'{s}'"),
                Token::SysVar(v) => format!("@@{v}"),
                Token::Punct(c) => c.to_string(),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    fn error<T>(&self) -> Result<T, String> {
        Err(format!(
            "You have an error in your SQL syntax; check the manual that corresponds to your SingleStore server version for the right syntax to use near '{}' at line 1",
            self.near()
        ))
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

    /// Each keyword of `kws`, in order.
    fn kw(&mut self, kws: &str) -> Result<(), String> {
        for kw in kws.split_whitespace() {
            if !self.eat_kw(kw) {
                return self.error();
            }
        }
        Ok(())
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek() == Some(&Token::Punct(c));
        if yes {
            self.at += 1;
        }
        yes
    }

    fn punct(&mut self, c: char) -> Result<(), String> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            self.error()
        }
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

    fn string(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Str(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// A name: quoted or bare identifier.
    fn ident(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Ident(s) | Token::Word(s) => Some(s.clone()),
            _ => None,
        })
    }

    /// A user name: bare, quoted identifier or string.
    fn user(&mut self) -> Result<String, String> {
        self.take(|t| match t {
            Token::Ident(s) | Token::Word(s) | Token::Str(s) => Some(s.clone()),
            _ => None,
        })
    }

    fn port(&mut self) -> Result<u16, String> {
        self.take(|t| match t {
            Token::Num(n) => n.parse().ok(),
            _ => None,
        })
    }

    /// `'host'` followed by `:port`.
    fn address(&mut self) -> Result<Address, String> {
        let host = self.string()?;
        self.punct(':')?;
        Ok(Address {
            host,
            port: self.port()?,
        })
    }

    /// `<db>.<table>`.
    fn qualified(&mut self) -> Result<(String, String), String> {
        let database = self.ident()?;
        self.punct('.')?;
        Ok((database, self.ident()?))
    }

    /// `(<item>, ...)` read by `item`.
    fn list<T>(
        &mut self,
        mut item: impl FnMut(&mut Self) -> Result<T, String>,
    ) -> Result<Vec<T>, String> {
        self.punct('(')?;
        let mut out = vec![item(self)?];
        while self.eat_punct(',') {
            out.push(item(self)?);
        }
        self.punct(')')?;
        Ok(out)
    }

    fn end(&mut self) -> Result<(), String> {
        self.eat_punct(';');
        if self.peek().is_some() {
            return self.error();
        }
        Ok(())
    }
}

/// Parses one COM_QUERY holding one statement.
pub fn parse(sql: &str) -> Result<Statement, String> {
    let tokens = tokenize(sql)?;
    let mut c = Cursor { tokens, at: 0 };
    let statement = if c.eat_kw("SELECT") {
        select(&mut c)?
    } else if c.eat_kw("SHOW") {
        show(&mut c)?
    } else if c.eat_kw("SET") {
        set(&mut c)?
    } else if c.eat_kw("BOOTSTRAP") {
        c.kw("AGGREGATOR")?;
        Statement::Bootstrap { host: c.string()? }
    } else if c.eat_kw("ADD") {
        let leaf = node_kind(&mut c)?;
        let user = c.user()?;
        let password = if c.eat_punct(':') {
            c.string()?
        } else {
            String::new()
        };
        c.punct('@')?;
        Statement::Add {
            leaf,
            user,
            password,
            address: c.address()?,
        }
    } else if c.eat_kw("REMOVE") {
        let leaf = node_kind(&mut c)?;
        Statement::Remove {
            leaf,
            address: c.address()?,
        }
    } else if c.eat_kw("PROMOTE") {
        c.kw("AGGREGATOR")?;
        let address = c.address()?;
        c.kw("TO MASTER")?;
        Statement::Promote { address }
    } else if c.eat_kw("AGGREGATOR") {
        c.kw("SET AS MASTER")?;
        Statement::SetAsMaster
    } else if c.eat_kw("CREATE") {
        create(&mut c)?
    } else if c.eat_kw("INSERT") {
        insert(&mut c)?
    } else {
        return c.error();
    };
    c.end()?;
    Ok(statement)
}

/// `LEAF` (true) or `AGGREGATOR` (false).
fn node_kind(c: &mut Cursor) -> Result<bool, String> {
    if c.eat_kw("LEAF") {
        Ok(true)
    } else {
        c.kw("AGGREGATOR")?;
        Ok(false)
    }
}

fn select(c: &mut Cursor) -> Result<Statement, String> {
    // SELECT <columns> FROM <db>.<table> [WHERE <column> = '<value>']
    let from = c.tokens[c.at..]
        .iter()
        .any(|t| matches!(t, Token::Word(w) if w.eq_ignore_ascii_case("FROM")));
    if from {
        let mut columns = vec![c.ident()?];
        while c.eat_punct(',') {
            columns.push(c.ident()?);
        }
        c.kw("FROM")?;
        let (database, table) = c.qualified()?;
        let filter = if c.eat_kw("WHERE") {
            let column = c.ident()?;
            c.punct('=')?;
            Some((column, c.string()?))
        } else {
            None
        };
        return Ok(Statement::SelectFrom {
            columns,
            database,
            table,
            filter,
        });
    }
    let mut items = Vec::new();
    loop {
        let (written, item) = c.take(|t| match t {
            Token::Num(n) => Some((n.clone(), SelectItem::Number(n.clone()))),
            Token::Str(s) => Some((s.clone(), SelectItem::Text(s.clone()))),
            Token::Word(w) if w.eq_ignore_ascii_case("NULL") => Some((w.clone(), SelectItem::Null)),
            Token::SysVar(v) => {
                let lower = v.to_ascii_lowercase();
                let name = lower
                    .strip_prefix("session.")
                    .or_else(|| lower.strip_prefix("global."))
                    .unwrap_or(&lower)
                    .to_owned();
                Some((format!("@@{v}"), SelectItem::Variable(name)))
            }
            _ => None,
        })?;
        let name = if c.eat_kw("AS") { c.ident()? } else { written };
        items.push((name, item));
        if !c.eat_punct(',') {
            break;
        }
    }
    Ok(Statement::Select(items))
}

fn show(c: &mut Cursor) -> Result<Statement, String> {
    if c.eat_kw("AGGREGATORS") {
        return Ok(Statement::ShowAggregators);
    }
    if c.eat_kw("LEAVES") {
        return Ok(Statement::ShowLeaves);
    }
    if c.eat_kw("DATABASES") {
        c.kw("EXTENDED")?;
        return Ok(Statement::ShowDatabasesExtended);
    }
    let _ = c.eat_kw("GLOBAL") || c.eat_kw("SESSION");
    c.kw("VARIABLES")?;
    let like = if c.eat_kw("LIKE") {
        Some(c.string()?)
    } else {
        None
    };
    Ok(Statement::ShowVariables { like })
}

fn set(c: &mut Cursor) -> Result<Statement, String> {
    if c.eat_kw("LICENSE") {
        c.punct('=')?;
        return Ok(Statement::SetLicense { key: c.string()? });
    }
    if c.is_kw("GLOBAL") {
        // Global settings are not simulated: refused rather than silently ignored.
        return c.error();
    }
    if c.eat_kw("NAMES") {
        c.take(|t| match t {
            Token::Word(_) | Token::Str(_) => Some(()),
            _ => None,
        })?;
        if c.eat_kw("COLLATE") {
            c.take(|t| match t {
                Token::Word(_) | Token::Str(_) => Some(()),
                _ => None,
            })?;
        }
        return Ok(Statement::SetSession);
    }
    // [SESSION] name = value | @@[session.]name = value, comma-separated.
    loop {
        let _ = c.eat_kw("SESSION");
        c.take(|t| match t {
            Token::Word(_) => Some(()),
            Token::SysVar(v) if !v.to_ascii_lowercase().starts_with("global.") => Some(()),
            _ => None,
        })?;
        if !c.eat_punct('=') {
            c.punct(':')?;
            c.punct('=')?;
        }
        c.take(|t| match t {
            Token::Word(_) | Token::Str(_) | Token::Num(_) => Some(()),
            _ => None,
        })?;
        if !c.eat_punct(',') {
            return Ok(Statement::SetSession);
        }
    }
}

fn if_not_exists(c: &mut Cursor) -> Result<bool, String> {
    if c.eat_kw("IF") {
        c.kw("NOT EXISTS")?;
        return Ok(true);
    }
    Ok(false)
}

fn create(c: &mut Cursor) -> Result<Statement, String> {
    if c.eat_kw("DATABASE") {
        let if_not_exists = if_not_exists(c)?;
        return Ok(Statement::CreateDatabase {
            name: c.ident()?,
            if_not_exists,
        });
    }
    c.kw("TABLE")?;
    let if_not_exists = if_not_exists(c)?;
    let (database, table) = c.qualified()?;
    c.punct('(')?;
    let mut columns = Vec::new();
    let mut key = None;
    loop {
        if c.eat_kw("PRIMARY") {
            c.kw("KEY")?;
            let keys = c.list(Cursor::ident)?;
            if keys.len() != 1 || key.is_some() {
                return Err("the simulator keeps tables with one primary-key column".into());
            }
            key = keys.into_iter().next();
        } else {
            columns.push(c.ident()?);
            // The column's type and attributes: words and parenthesised lengths.
            loop {
                match c.peek() {
                    Some(Token::Word(_)) => c.at += 1,
                    Some(Token::Punct('(')) => {
                        c.list(|c| {
                            c.take(|t| match t {
                                Token::Num(_) => Some(()),
                                _ => None,
                            })
                        })?;
                    }
                    _ => break,
                }
            }
        }
        if !c.eat_punct(',') {
            break;
        }
    }
    c.punct(')')?;
    let Some(key) = key else {
        return Err("the simulator keeps tables with a PRIMARY KEY only".into());
    };
    if !columns.contains(&key) {
        return Err(format!("Key column '{key}' doesn't exist in table"));
    }
    Ok(Statement::CreateTable {
        database,
        table,
        if_not_exists,
        columns,
        key,
    })
}

fn insert(c: &mut Cursor) -> Result<Statement, String> {
    c.kw("INTO")?;
    let (database, table) = c.qualified()?;
    let columns = c.list(Cursor::ident)?;
    c.kw("VALUES")?;
    let values = c.list(Cursor::string)?;
    if values.len() != columns.len() {
        return Err("Column count doesn't match value count at row 1".into());
    }
    let update = if c.eat_kw("ON") {
        c.kw("DUPLICATE KEY UPDATE")?;
        let mut updated = Vec::new();
        loop {
            let column = c.ident()?;
            c.punct('=')?;
            c.kw("VALUES")?;
            c.punct('(')?;
            let source = c.ident()?;
            c.punct(')')?;
            if source != column {
                return Err(format!(
                    "the simulator updates a column only from its own new value, not {column} from {source}"
                ));
            }
            updated.push(column);
            if !c.eat_punct(',') {
                break;
            }
        }
        Some(updated)
    } else {
        None
    };
    Ok(Statement::Insert {
        database,
        table,
        columns,
        values,
        update,
    })
}

/// Whether `name` matches the `LIKE` `pattern` (`%` any run, `_` one character; no escapes),
/// case-insensitively.
pub fn like(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.split_first() {
            None => n.is_empty(),
            Some(('%', rest)) => (0..=n.len()).any(|i| go(rest, &n[i..])),
            Some(('_', rest)) => !n.is_empty() && go(rest, &n[1..]),
            Some((c, rest)) => n
                .split_first()
                .is_some_and(|(d, n)| c.eq_ignore_ascii_case(d) && go(rest, n)),
        }
    }
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    go(&p, &n)
}
