//! Update constraints of catalog Version objects (reference §4.3).
//!
//! A Version object's `spec.updateConstraints` holds an `allowlist` and a `denylist` of
//! Masterminds-semver (Go `github.com/Masterminds/semver/v3`) constraint expressions. A target
//! is allowed when it matches at least one allowlist entry (or the allowlist is empty) and no
//! denylist entry. Targets are Version **object names**; the expressions are evaluated against
//! each object's `spec.version`.
//!
//! # Syntax (as Masterminds)
//! - Operators `=`, `!=`, `>`, `<`, `>=` (`=>`), `<=` (`=<`), `~` (`~>`), `^`; no operator means
//!   `=`. Wildcards `x`, `X`, `*` and missing minor/patch parts (`1`, `1.2`, `1.2.x`).
//! - `,` or whitespace between constraints means AND; `||` means OR; `A - B` is `>= A, <= B`.
//! - Versions parse leniently like Masterminds `NewVersion`: an optional `v`, one to three
//!   numeric parts, a pre-release and build metadata. `2022-cu22` is `2022.0.0-cu22`.
//! - A pre-release version only matches an OR-group that itself contains a pre-release
//!   comparator (all MSSQL constraints do: `>= 2022-cu12, < 2025-cu1`).
//! - A constraint version with a missing minor or patch part is a wildcard ("dirty"), also when
//!   it carries a pre-release: `2022-cu14` in a constraint is `2022.x` with pre-release `cu14`.
//!   So `= 2022-cu14` behaves like `~2022-cu14` (any 2022 version from cu14 on) and
//!   `<= 2022-cu19` admits every 2022 version, while `> 2022-cu12` needs a major above 2022.
//!   `>=` and `<` compare plainly, which is why KubeDB's `>= X, < Y` allowlists work as
//!   intended. Write `2022.0.0-cu14` for an exact match.
//!
//! # Differences from KubeDB (deliberate)
//! - **Pre-release identifiers compare in natural order**: digit runs inside an alphanumeric
//!   identifier compare numerically, so `cu9 < cu12`. Masterminds (and the SemVer spec)
//!   compare alphanumeric identifiers as text, where `cu9 > cu12`.
//! - Version parsing uses the [`semver`] crate's pre-release and build types, which reject
//!   exactly what Masterminds rejects for pre-releases (empty identifiers, numeric identifiers
//!   with leading zeros, characters outside `[0-9A-Za-z-]`).
//! - Errors name the offending Version object and list field instead of failing with a bare
//!   parse error, and a denied update lists the allowed targets.
//! - Everything else (dirty-wildcard rules of `>`, `<=`, `!=`, `~`, `^`; the pre-release group
//!   rule; ignoring build metadata in comparisons) follows Masterminds v3.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use crate::catalog::VersionObject;

/// A version parsed like Masterminds `NewVersion`.
#[derive(Debug, Clone)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: semver::Prerelease,
    build: semver::BuildMetadata,
    original: String,
}

/// Error parsing a version or a constraint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct ParseError {
    reason: String,
}

impl ParseError {
    fn new(reason: impl Into<String>) -> Self {
        Self {
            reason: reason.into(),
        }
    }
}

impl Version {
    /// Major part.
    pub fn major(&self) -> u64 {
        self.major
    }
    /// Minor part.
    pub fn minor(&self) -> u64 {
        self.minor
    }
    /// Patch part.
    pub fn patch(&self) -> u64 {
        self.patch
    }
    /// Pre-release (empty for a release).
    pub fn pre(&self) -> &semver::Prerelease {
        &self.pre
    }
    /// Whether this is a pre-release.
    pub fn is_prerelease(&self) -> bool {
        !self.pre.is_empty()
    }

    fn compare(&self, other: &Self) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_prerelease(self.pre.as_str(), other.pre.as_str()))
    }
}

impl FromStr for Version {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let original = s.to_owned();
        let rest = s.strip_prefix('v').unwrap_or(s);
        let (rest, build) = match rest.split_once('+') {
            Some((r, b)) => (r, b),
            None => (rest, ""),
        };
        let (core, pre) = match rest.split_once('-') {
            Some((c, p)) => (c, p),
            None => (rest, ""),
        };
        if rest.contains('+') || (rest.contains('-') && pre.is_empty()) {
            return Err(ParseError::new(format!("{s:?} is not a semantic version")));
        }
        let parts: Vec<&str> = core.split('.').collect();
        if parts.is_empty() || parts.len() > 3 {
            return Err(ParseError::new(format!(
                "{s:?} is not a semantic version (expected 1 to 3 numeric parts)"
            )));
        }
        let mut nums = [0u64; 3];
        for (i, part) in parts.iter().enumerate() {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ParseError::new(format!(
                    "{s:?} is not a semantic version ({part:?} is not a number)"
                )));
            }
            nums[i] = part
                .parse()
                .map_err(|_| ParseError::new(format!("{s:?}: {part:?} is too large")))?;
        }
        let pre = semver::Prerelease::new(pre).map_err(|e| {
            ParseError::new(format!("{s:?} has an invalid pre-release {pre:?}: {e}"))
        })?;
        let build = semver::BuildMetadata::new(build).map_err(|e| {
            ParseError::new(format!("{s:?} has invalid build metadata {build:?}: {e}"))
        })?;
        Ok(Self {
            major: nums[0],
            minor: nums[1],
            patch: nums[2],
            pre,
            build,
            original,
        })
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl PartialEq for Version {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}
impl Eq for Version {}
impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Version {
    /// Precedence: major, minor, patch, then pre-release (a release is greater than any of its
    /// pre-releases); build metadata is ignored.
    fn cmp(&self, other: &Self) -> Ordering {
        self.compare(other)
    }
}

impl Version {
    /// The build metadata (ignored in comparisons).
    pub fn build(&self) -> &semver::BuildMetadata {
        &self.build
    }
}

/// Compares two pre-release strings; an empty one (a release) is the greatest.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let mut left = a.split('.');
    let mut right = b.split('.');
    loop {
        match (left.next(), right.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => match compare_identifier(x, y) {
                Ordering::Equal => {}
                other => return other,
            },
        }
    }
}

fn is_numeric(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// Compares two digit strings numerically (any length).
fn compare_digits(a: &str, b: &str) -> Ordering {
    let a = a.trim_start_matches('0');
    let b = b.trim_start_matches('0');
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

/// One pre-release identifier: numeric < alphanumeric; alphanumerics in natural order.
fn compare_identifier(a: &str, b: &str) -> Ordering {
    match (is_numeric(a), is_numeric(b)) {
        (true, true) => compare_digits(a, b),
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => natural_compare(a, b),
    }
}

/// Splits into runs of digits and non-digits; digit runs compare numerically.
fn natural_compare(a: &str, b: &str) -> Ordering {
    let (mut x, mut y) = (chunks(a), chunks(b));
    loop {
        match (x.next(), y.next()) {
            (None, None) => return a.cmp(b),
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(p), Some(q)) => {
                let ord = if is_numeric(p) && is_numeric(q) {
                    compare_digits(p, q)
                } else {
                    p.cmp(q)
                };
                if ord != Ordering::Equal {
                    return ord;
                }
            }
        }
    }
}

fn chunks(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    std::iter::from_fn(move || {
        let first = rest.chars().next()?;
        let digit = first.is_ascii_digit();
        let end = rest
            .find(|c: char| c.is_ascii_digit() != digit)
            .unwrap_or(rest.len());
        let (chunk, tail) = rest.split_at(end);
        rest = tail;
        Some(chunk)
    })
}

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `=` or none (tilde semantics when the version has wildcards).
    Eq,
    /// `!=`.
    Ne,
    /// `>`.
    Gt,
    /// `<`.
    Lt,
    /// `>=` / `=>`.
    Ge,
    /// `<=` / `=<`.
    Le,
    /// `~` / `~>`.
    Tilde,
    /// `^`.
    Caret,
}

/// One comparator, e.g. `>= 2022-cu12`.
#[derive(Debug, Clone)]
struct Comparator {
    op: Op,
    version: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

fn is_x(s: &str) -> bool {
    matches!(s, "x" | "X" | "*")
}

impl Comparator {
    fn parse(op: Op, text: &str) -> Result<Self, ParseError> {
        let body = text.strip_prefix('v').unwrap_or(text);
        // Split off pre-release/build so that wildcards in the core can be detected.
        let core_end = body.find(['-', '+']).unwrap_or(body.len());
        let (core, suffix) = body.split_at(core_end);
        let parts: Vec<&str> = core.split('.').collect();
        if parts.len() > 3 || parts.iter().any(|p| p.is_empty()) {
            return Err(ParseError::new(format!("{text:?} is not a version")));
        }
        let get = |i: usize| parts.get(i).copied().unwrap_or("");
        let (mut dirty, mut minor_dirty, mut patch_dirty) = (false, false, false);
        let normalized = if is_x(get(0)) {
            dirty = true;
            format!("0.0.0{suffix}")
        } else if is_x(get(1)) || get(1).is_empty() {
            dirty = true;
            minor_dirty = true;
            format!("{}.0.0{suffix}", get(0))
        } else if is_x(get(2)) || get(2).is_empty() {
            dirty = true;
            patch_dirty = true;
            format!("{}.{}.0{suffix}", get(0), get(1))
        } else {
            format!("{core}{suffix}")
        };
        let version: Version = normalized
            .parse()
            .map_err(|e: ParseError| ParseError::new(format!("{text:?}: {e}")))?;
        Ok(Self {
            op,
            version: Version {
                original: text.to_owned(),
                ..version
            },
            dirty,
            minor_dirty,
            patch_dirty,
        })
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v < c {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        v.major == c.major && (v.minor == c.minor || self.minor_dirty)
    }

    fn matches(&self, v: &Version) -> bool {
        let c = &self.version;
        match self.op {
            Op::Eq => {
                if self.dirty {
                    self.tilde(v)
                } else {
                    v == c
                }
            }
            Op::Ne => {
                if self.dirty {
                    if c.major != v.major {
                        return true;
                    }
                    if self.minor_dirty {
                        return false;
                    }
                    if c.minor != v.minor {
                        return true;
                    }
                    if self.patch_dirty {
                        return compare_prerelease(v.pre.as_str(), c.pre.as_str())
                            != Ordering::Equal;
                    }
                }
                v != c
            }
            Op::Gt => {
                if !self.dirty {
                    return v > c;
                }
                match v.major.cmp(&c.major) {
                    Ordering::Greater => true,
                    Ordering::Less => false,
                    Ordering::Equal if self.minor_dirty => false,
                    Ordering::Equal if self.patch_dirty => v.minor > c.minor,
                    Ordering::Equal => v > c,
                }
            }
            Op::Lt => v < c,
            Op::Ge => v >= c,
            Op::Le => {
                if !self.dirty {
                    return v <= c;
                }
                !(v.major > c.major
                    || (v.major == c.major && v.minor > c.minor && !self.minor_dirty))
            }
            Op::Tilde => self.tilde(v),
            Op::Caret => {
                if v < c {
                    return false;
                }
                if c.major > 0 || self.minor_dirty {
                    return v.major == c.major;
                }
                if v.major > 0 {
                    return false;
                }
                if c.minor > 0 || self.patch_dirty {
                    return v.minor == c.minor;
                }
                if v.minor > 0 {
                    return false;
                }
                v.patch == c.patch
            }
        }
    }
}

/// A parsed constraint expression: OR-groups of AND-ed comparators.
#[derive(Debug, Clone)]
pub struct Constraints {
    groups: Vec<Vec<Comparator>>,
    source: String,
}

const OPERATORS: [(&str, Op); 12] = [
    ("!=", Op::Ne),
    (">=", Op::Ge),
    ("=>", Op::Ge),
    ("<=", Op::Le),
    ("=<", Op::Le),
    ("~>", Op::Tilde),
    (">", Op::Gt),
    ("<", Op::Lt),
    ("=", Op::Eq),
    ("~", Op::Tilde),
    ("^", Op::Caret),
    ("", Op::Eq),
];

fn split_operator(token: &str) -> (Op, &str) {
    for (prefix, op) in OPERATORS {
        if let Some(rest) = token.strip_prefix(prefix) {
            return (op, rest);
        }
    }
    (Op::Eq, token)
}

fn is_operator_only(token: &str) -> bool {
    !token.is_empty()
        && token
            .chars()
            .all(|c| matches!(c, '=' | '!' | '>' | '<' | '~' | '^'))
}

fn parse_group(group: &str) -> Result<Vec<Comparator>, ParseError> {
    let normalized = group.replace(',', " , ");
    let tokens: Vec<&str> = normalized.split_whitespace().collect();
    if tokens.iter().all(|t| *t == ",") {
        return Err(ParseError::new("empty constraint"));
    }
    let mut out = Vec::new();
    let mut i = 0;
    let mut expect_separator = false;
    while i < tokens.len() {
        let token = tokens[i];
        if token == "," {
            if !expect_separator {
                return Err(ParseError::new("misplaced ','"));
            }
            expect_separator = false;
            i += 1;
            continue;
        }
        // Hyphen range `A - B`.
        if tokens.get(i + 1) == Some(&"-") {
            let upper = tokens.get(i + 2).ok_or_else(|| {
                ParseError::new(format!("range {token:?} - is missing its upper bound"))
            })?;
            out.push(Comparator::parse(Op::Ge, token)?);
            out.push(Comparator::parse(Op::Le, upper)?);
            i += 3;
            expect_separator = true;
            continue;
        }
        let (op, version) = if is_operator_only(token) {
            let op = OPERATORS
                .iter()
                .find(|(p, _)| *p == token)
                .map(|(_, op)| *op)
                .ok_or_else(|| ParseError::new(format!("unknown operator {token:?}")))?;
            let version = tokens
                .get(i + 1)
                .filter(|t| **t != ",")
                .ok_or_else(|| ParseError::new(format!("operator {token:?} has no version")))?;
            i += 2;
            (op, *version)
        } else {
            i += 1;
            split_operator(token)
        };
        if version.is_empty()
            || is_operator_only(version)
            || version.starts_with(['=', '!', '>', '<', '~', '^'])
        {
            return Err(ParseError::new(format!(
                "malformed comparator near {token:?}"
            )));
        }
        out.push(Comparator::parse(op, version)?);
        expect_separator = true;
    }
    if !expect_separator {
        return Err(ParseError::new("trailing ','"));
    }
    Ok(out)
}

impl FromStr for Constraints {
    type Err = ParseError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let groups = s
            .split("||")
            .map(parse_group)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            groups,
            source: s.to_owned(),
        })
    }
}

impl fmt::Display for Constraints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Constraints {
    /// Whether `v` satisfies the expression (at least one OR-group matches fully). A
    /// pre-release `v` only matches a group that contains a pre-release comparator.
    pub fn matches(&self, v: &Version) -> bool {
        self.groups.iter().any(|group| {
            let group_has_pre = group.iter().any(|c| c.version.is_prerelease());
            if v.is_prerelease() && !group_has_pre {
                return false;
            }
            group.iter().all(|c| c.matches(v))
        })
    }
}

/// Which list of `spec.updateConstraints` an expression came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// `allowlist`.
    Allowlist,
    /// `denylist`.
    Denylist,
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Allowlist => "allowlist",
            Self::Denylist => "denylist",
        })
    }
}

/// A catalog problem that prevents evaluating the constraints. Each names the Version object.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConstraintError {
    /// A Version object has an empty `spec.version`.
    #[error("{kind} {name:?} has no spec.version")]
    MissingVersion {
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
    },
    /// A Version object's `spec.version` does not parse.
    #[error("{kind} {name:?} has an unparsable spec.version {version:?}: {reason}")]
    InvalidVersion {
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
        /// The value.
        version: String,
        /// The parse error.
        reason: String,
    },
    /// A constraint expression does not parse.
    #[error(
        "{kind} {name:?} has a malformed spec.updateConstraints.{list} entry {constraint:?}: {reason}"
    )]
    MalformedConstraint {
        /// Kind of the object.
        kind: &'static str,
        /// Name of the object.
        name: String,
        /// Which list.
        list: ListKind,
        /// The expression.
        constraint: String,
        /// The parse error.
        reason: String,
    },
}

/// Why an update from one Version to another is rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UpdateError {
    /// The current version object does not exist.
    #[error("current version {name:?} not found: no {kind} object of that name")]
    CurrentNotFound {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
    },
    /// The target version object does not exist.
    #[error("target version {name:?} not found: no {kind} object of that name")]
    TargetNotFound {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
    },
    /// The catalog cannot be evaluated.
    #[error(transparent)]
    Constraint(#[from] ConstraintError),
    /// The target is deprecated (SingleStore only, as KubeDB's webhook).
    #[error("target version {name:?} is deprecated ({kind}.spec.deprecated is true)")]
    Deprecated {
        /// Kind.
        kind: &'static str,
        /// Name.
        name: String,
    },
    /// The constraints do not allow the target.
    #[error("update from {kind} {current:?} to {target:?} is denied by the update constraints of {current:?}; allowed targets: [{}]", allowed.join(", "))]
    Denied {
        /// Kind.
        kind: &'static str,
        /// Current version name.
        current: String,
        /// Target version name.
        target: String,
        /// Names of the allowed targets.
        allowed: Vec<String>,
    },
}

/// Parses a Version object's `spec.version`.
pub fn object_version<V: VersionObject>(object: &V) -> Result<Version, ConstraintError> {
    let raw = object.spec_version();
    if raw.trim().is_empty() {
        return Err(ConstraintError::MissingVersion {
            kind: V::KIND,
            name: object.object_name(),
        });
    }
    raw.trim()
        .parse()
        .map_err(|e: ParseError| ConstraintError::InvalidVersion {
            kind: V::KIND,
            name: object.object_name(),
            version: raw.to_owned(),
            reason: e.to_string(),
        })
}

fn parse_list<V: VersionObject>(
    object: &V,
    list: ListKind,
    entries: &[String],
) -> Result<Vec<Constraints>, ConstraintError> {
    entries
        .iter()
        .map(|entry| {
            entry
                .parse()
                .map_err(|e: ParseError| ConstraintError::MalformedConstraint {
                    kind: V::KIND,
                    name: object.object_name(),
                    list,
                    constraint: entry.clone(),
                    reason: e.to_string(),
                })
        })
        .collect()
}

/// Names of the Version objects `current` may be updated to, ordered by version (then name).
///
/// As KubeDB, every object in `all` must have a parsable `spec.version`, otherwise the whole
/// evaluation fails.
pub fn allowed_targets<V: VersionObject>(
    current: &V,
    all: &[V],
) -> Result<Vec<String>, ConstraintError> {
    let (allow, deny) = match current.update_constraints() {
        Some(uc) => (
            parse_list(
                current,
                ListKind::Allowlist,
                uc.allowlist.as_deref().unwrap_or_default(),
            )?,
            parse_list(
                current,
                ListKind::Denylist,
                uc.denylist.as_deref().unwrap_or_default(),
            )?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let mut candidates = all
        .iter()
        .map(|o| Ok((object_version(o)?, o.object_name())))
        .collect::<Result<Vec<_>, ConstraintError>>()?;
    candidates.retain(|(v, _)| {
        (allow.is_empty() || allow.iter().any(|c| c.matches(v)))
            && !deny.iter().any(|c| c.matches(v))
    });
    candidates.sort_by(|(a, an), (b, bn)| a.cmp(b).then_with(|| an.cmp(bn)));
    Ok(candidates.into_iter().map(|(_, name)| name).collect())
}

/// Checks an UpdateVersion from the object named `current_name` to the one named
/// `target_name` against the catalog `all`.
pub fn check_update<V: VersionObject>(
    current_name: &str,
    target_name: &str,
    all: &[V],
) -> Result<(), UpdateError> {
    let find = |name: &str| all.iter().find(|o| o.object_name() == name);
    let current = find(current_name).ok_or_else(|| UpdateError::CurrentNotFound {
        kind: V::KIND,
        name: current_name.to_owned(),
    })?;
    let target = find(target_name).ok_or_else(|| UpdateError::TargetNotFound {
        kind: V::KIND,
        name: target_name.to_owned(),
    })?;
    let allowed = allowed_targets(current, all)?;
    if !allowed.iter().any(|n| n == target_name) {
        return Err(UpdateError::Denied {
            kind: V::KIND,
            current: current_name.to_owned(),
            target: target_name.to_owned(),
            allowed,
        });
    }
    if V::REJECT_DEPRECATED_TARGET && target.is_deprecated() {
        return Err(UpdateError::Deprecated {
            kind: V::KIND,
            name: target_name.to_owned(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        s.parse().unwrap()
    }

    fn check(constraint: &str, version: &str) -> bool {
        constraint
            .parse::<Constraints>()
            .unwrap_or_else(|e| panic!("{constraint}: {e}"))
            .matches(&v(version))
    }

    #[test]
    fn parses_lenient_versions() {
        let cases = [
            ("2022-cu22", (2022, 0, 0, "cu22")),
            ("8.9.3", (8, 9, 3, "")),
            ("v1.2", (1, 2, 0, "")),
            ("1", (1, 0, 0, "")),
            ("1.2.3-beta.1+build.5", (1, 2, 3, "beta.1")),
        ];
        for (input, (ma, mi, pa, pre)) in cases {
            let parsed = v(input);
            assert_eq!(
                (
                    parsed.major(),
                    parsed.minor(),
                    parsed.patch(),
                    parsed.pre().as_str()
                ),
                (ma, mi, pa, pre),
                "{input}"
            );
        }
        for bad in [
            "",
            "x",
            "1.2.3.4",
            "1..2",
            "abc",
            "1.2-",
            "1.2.3-01",
            "1.2.3-a..b",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn orders_prereleases_numerically() {
        assert!(v("2022-cu9") < v("2022-cu12"));
        assert!(v("2022-cu12") < v("2022-cu22"));
        assert!(v("2022-cu22") < v("2025-cu0"));
        assert!(v("1.0.0-alpha") < v("1.0.0"));
        assert!(v("1.0.0-1") < v("1.0.0-alpha"));
        assert!(v("1.0.0-alpha") < v("1.0.0-alpha.1"));
        assert!(v("1.0.0+a") == v("1.0.0+b"));
    }

    #[test]
    fn operators() {
        let table = [
            (">= 1.2.3", "1.2.3", true),
            (">= 1.2.3", "1.2.2", false),
            ("> 1.2.3", "1.2.3", false),
            ("> 1.2.3", "1.2.4", true),
            ("< 1.2.3", "1.2.2", true),
            ("<= 1.2.3", "1.2.3", true),
            ("<= 1.2.3", "1.2.4", false),
            ("= 1.2.3", "1.2.3", true),
            ("1.2.3", "1.2.4", false),
            ("!= 1.2.3", "1.2.3", false),
            ("!= 1.2.3", "1.2.4", true),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1", "1.9.0", true),
            ("~1", "2.0.0", false),
            ("^1.2.3", "1.9.9", true),
            ("^1.2.3", "2.0.0", false),
            ("^1.2.3", "1.2.2", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("1.2.x", "1.2.7", true),
            ("1.2.x", "1.3.0", false),
            ("1.X", "1.7.0", true),
            ("*", "5.6.7", true),
            ("> 1.x", "1.9.0", false),
            ("> 1.x", "2.0.0", true),
            ("<= 2.x", "2.9.9", true),
            ("<= 2.x", "3.0.0", false),
            ("!= 1.x", "1.5.0", false),
            ("!= 1.x", "2.0.0", true),
            (">= 1.0, < 2.0", "1.5.0", true),
            (">= 1.0 < 2.0", "2.0.0", false),
            ("< 1.0 || >= 3.0", "3.1.0", true),
            ("< 1.0 || >= 3.0", "2.0.0", false),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            (">=1.2.3,<=1.2.5", "1.2.4", true),
        ];
        for (constraint, version, expected) in table {
            assert_eq!(
                check(constraint, version),
                expected,
                "{constraint} vs {version}"
            );
        }
    }

    #[test]
    fn prerelease_only_matches_groups_with_prerelease() {
        assert!(!check(">= 2022.0.0", "2022-cu22"));
        assert!(check(">= 2022-cu12, < 2025-cu1", "2022-cu22"));
        assert!(check(">= 2022.0.0 || >= 2022-cu1", "2022-cu22"));
        assert!(check("<= 8.9.3", "8.9.3"));
    }

    #[test]
    fn rejects_malformed_constraints() {
        for bad in [
            "",
            ">=",
            ">= abc",
            ">= 1.2,",
            ", >= 1.2",
            ">== 1.2",
            "1.2 -",
            ">= 1.2 ||",
        ] {
            assert!(
                bad.parse::<Constraints>().is_err(),
                "{bad:?} should not parse"
            );
        }
    }
}
