//! Reading a component's metadata properties as Dapr's components do: names in any case,
//! values trimmed, Go's booleans and Dapr's durations; and, from a kind's table of the names
//! it knows, the entries it accepts without effect (to be logged).

use super::kind::{Metadata, Remark};
use anyhow::{Context, bail};
use std::fmt;
use std::time::Duration;

/// What a kind does with one of the metadata names it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handling {
    /// Read and honoured.
    Implemented,
    /// Refused at start-up when set, for the reason given.
    RefusedWhenSet(&'static str),
    /// A switch: `true` is refused at start-up for the reason given, `false` accepted.
    RefusedWhenTrue(&'static str),
    /// Accepted, and logged as ignored for the reason given.
    Ignored(&'static str),
}

/// How `names` handles `name` (any case); `None` when it is not in the table.
pub fn handling(names: &[(&str, Handling)], name: &str) -> Option<Handling> {
    names
        .iter()
        .find(|(known, _)| known.eq_ignore_ascii_case(name))
        .map(|(_, handling)| *handling)
}

/// A metadata entry that is accepted but changes nothing, to be logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unused {
    /// A known name this host ignores, with the reason.
    Ignored {
        /// The name as written.
        name: String,
        /// Why it changes nothing here.
        why: &'static str,
    },
    /// A name the kind does not read (a typo, or another component's setting).
    Unknown {
        /// The name as written.
        name: String,
        /// Who does not read it, for the message: `lock.etcd`, `Dapr's lock.redis`.
        reader: &'static str,
    },
}

impl fmt::Display for Unused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unused::Ignored { name, why } => {
                write!(f, "metadata property {name} is ignored: {why}")
            }
            Unused::Unknown { name, reader } => write!(
                f,
                "metadata property {name} is not one {reader} reads; ignored (as daprd does)"
            ),
        }
    }
}

impl Unused {
    /// Whether the kind does not read the name at all (a typo, perhaps).
    pub fn is_unknown(&self) -> bool {
        matches!(self, Unused::Unknown { .. })
    }

    /// The remark to log: a warning for an unknown name, a note for an ignored one.
    pub fn remark(&self) -> Remark {
        match self.is_unknown() {
            true => Remark::Warn(self.to_string()),
            false => Remark::Info(self.to_string()),
        }
    }
}

/// The entries of `metadata` that `names` ignores or does not know, in name order; `reader`
/// names the kind in the message of an unknown one.
pub fn unused(
    names: &[(&str, Handling)],
    metadata: &Metadata,
    reader: &'static str,
) -> Vec<Unused> {
    metadata
        .keys()
        .filter_map(|name| match handling(names, name) {
            None => Some(Unused::Unknown {
                name: name.clone(),
                reader,
            }),
            Some(Handling::Ignored(why)) => Some(Unused::Ignored {
                name: name.clone(),
                why,
            }),
            Some(_) => None,
        })
        .collect()
}

/// A secret value: compared, never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(pub String);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Metadata of `pairs`, for the tests of the kinds that read it.
#[cfg(test)]
pub fn metadata_of(pairs: &[(&str, &str)]) -> Metadata {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// What `read` makes of metadata of `pairs`: the value, or the error with its causes, for
/// the tests of the kinds that read it.
#[cfg(test)]
pub fn read_of<T>(
    read: fn(&Metadata) -> anyhow::Result<T>,
    pairs: &[(&str, &str)],
) -> Result<T, String> {
    read(&metadata_of(pairs)).map_err(|e| format!("{e:#}"))
}

/// Asserts that a kind's table of names names each (in any case) once.
#[cfg(test)]
pub fn assert_each_name_once(names: &[(&str, Handling)]) {
    for (i, (name, _)) in names.iter().enumerate() {
        assert!(
            names[i + 1..]
                .iter()
                .all(|(other, _)| !other.eq_ignore_ascii_case(name)),
            "{name} twice"
        );
    }
}

/// The value of `name` (any case), trimmed; `None` when absent or empty.
pub fn lookup<'m>(metadata: &'m Metadata, name: &str) -> Option<&'m str> {
    metadata
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// A boolean as Go's `strconv.ParseBool` reads it (`true`, `True`, `1`, `f`, ...).
pub fn parse_bool(name: &str, value: &str) -> anyhow::Result<bool> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "t" | "1" => Ok(true),
        "false" | "f" | "0" => Ok(false),
        _ => bail!("metadata property {name} {value:?}: expected true or false"),
    }
}

/// A Dapr timeout value.
#[derive(Debug, PartialEq, Eq)]
pub enum Timeout {
    /// Absent or 0: the default.
    Default,
    /// Negative: no timeout.
    Unbounded,
    /// A duration.
    After(Duration),
}

/// The property `name` whose value is `text`, in Dapr's duration syntax: a number of
/// milliseconds, or a Go-style duration (`5s`, `1m30s`).
pub fn timeout(name: &str, text: Option<&str>) -> anyhow::Result<Timeout> {
    let Some(text) = text else {
        return Ok(Timeout::Default);
    };
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(match ms {
            0 => Timeout::Default,
            ms if ms < 0 => Timeout::Unbounded,
            ms => Timeout::After(Duration::from_millis(ms.unsigned_abs())),
        });
    }
    let duration = humantime::parse_duration(text)
        .with_context(|| format!("metadata property {name} {text:?}"))?;
    Ok(match duration.is_zero() {
        true => Timeout::Default,
        false => Timeout::After(duration),
    })
}
