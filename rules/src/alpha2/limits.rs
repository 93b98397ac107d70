//! A lock store's TTL bounds: the TTL a request without one gets and the longest one it may
//! ask for (component metadata `defaultTTL` and `maxTTL`, Go durations), read once from the
//! metadata and applied to every acquire and renewal.

use super::{Alpha2Error, DEFAULT_TTL, MAX_TTL};
use crate::duration;
use std::time::Duration;

/// The metadata property of the default TTL.
pub const DEFAULT_TTL_PROPERTY: &str = "defaultTTL";
/// The metadata property of the longest TTL.
pub const MAX_TTL_PROPERTY: &str = "maxTTL";

/// A lock store's TTL bounds: `0 < default ≤ max ≤` [`MAX_TTL`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TtlLimits {
    default: Duration,
    max: Duration,
}

impl Default for TtlLimits {
    /// [`DEFAULT_TTL`] and [`MAX_TTL`].
    fn default() -> Self {
        TtlLimits {
            default: DEFAULT_TTL,
            max: MAX_TTL,
        }
    }
}

impl TtlLimits {
    /// The bounds a component's `defaultTTL` and `maxTTL` metadata give (`None` or an empty
    /// value keeps the default: 30 s, 24 h). Each must be a positive Go duration, `maxTTL` at
    /// most [`MAX_TTL`] (the longest lease the lock logic grants) and `defaultTTL` at most
    /// `maxTTL`; the error names the property at fault.
    pub fn from_metadata(default_ttl: Option<&str>, max_ttl: Option<&str>) -> Result<Self, String> {
        let max = property(MAX_TTL_PROPERTY, max_ttl)?.unwrap_or(MAX_TTL);
        if max > MAX_TTL {
            return Err(format!(
                "metadata property {MAX_TTL_PROPERTY} is {}, above {}, the longest TTL a lock may have",
                duration::format(max),
                duration::format(MAX_TTL)
            ));
        }
        let default = match property(DEFAULT_TTL_PROPERTY, default_ttl)? {
            Some(default) if default > max => {
                return Err(format!(
                    "metadata property {DEFAULT_TTL_PROPERTY} is {}, above {MAX_TTL_PROPERTY} ({})",
                    duration::format(default),
                    duration::format(max)
                ));
            }
            Some(default) => default,
            None => DEFAULT_TTL.min(max),
        };
        Ok(TtlLimits { default, max })
    }

    /// The TTL of a request that names none.
    pub fn default_ttl(&self) -> Duration {
        self.default
    }

    /// The longest TTL a request may name.
    pub fn max_ttl(&self) -> Duration {
        self.max
    }

    /// The TTL asked for: a Go duration, above zero and at most the maximum; the default
    /// when absent. A refusal is `ERR_MALFORMED_REQUEST` and names the bound.
    pub fn ttl(&self, text: Option<&str>) -> Result<Duration, Alpha2Error> {
        let Some(text) = text else {
            return Ok(self.default);
        };
        let ttl = duration::parse(text)
            .map_err(|e| Alpha2Error::MalformedRequest(format!("invalid ttl: {e}")))?;
        if ttl.is_zero() {
            return Err(Alpha2Error::MalformedRequest(format!(
                "ttl {text:?} is not positive"
            )));
        }
        if ttl > self.max {
            return Err(Alpha2Error::MalformedRequest(format!(
                "ttl {text:?} is longer than the maximum, {}",
                duration::format(self.max)
            )));
        }
        Ok(ttl)
    }
}

/// A positive Go duration from the metadata property `name`; `None` when unset or empty.
fn property(name: &str, value: Option<&str>) -> Result<Option<Duration>, String> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let parsed = duration::parse(value)
        .map_err(|e| format!("metadata property {name} is not a duration: {e}"))?;
    if parsed.is_zero() {
        return Err(format!(
            "metadata property {name} is {value:?}; it must be above zero"
        ));
    }
    Ok(Some(parsed))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(default: Option<&str>, max: Option<&str>) -> Result<TtlLimits, String> {
        TtlLimits::from_metadata(default, max)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn unset_or_empty_metadata_keeps_the_defaults() {
        for (default, max) in [(None, None), (Some(""), Some(" "))] {
            let limits = limits(default, max).unwrap();
            assert_eq!(limits, TtlLimits::default());
            assert_eq!(
                (limits.default_ttl(), limits.max_ttl()),
                (DEFAULT_TTL, MAX_TTL)
            );
        }
    }

    #[test]
    fn reads_go_durations() {
        let read = limits(Some("1500ms"), Some("2m")).unwrap();
        assert_eq!(
            (read.default_ttl(), read.max_ttl()),
            (Duration::from_millis(1500), secs(120))
        );
        assert_eq!(limits(None, Some("1h")).unwrap().default_ttl(), secs(30));
        assert_eq!(limits(Some("24h"), None).unwrap().default_ttl(), MAX_TTL);
        // A maximum below 30 s without a default: the default is the maximum.
        let short = limits(None, Some("10s")).unwrap();
        assert_eq!((short.default_ttl(), short.max_ttl()), (secs(10), secs(10)));
    }

    #[test]
    fn refuses_bad_values_naming_the_property() {
        let cases = [
            (
                Some("soon"),
                None,
                "metadata property defaultTTL is not a duration: time: invalid duration \"soon\"",
            ),
            (
                None,
                Some("30"),
                "metadata property maxTTL is not a duration: time: missing unit in duration \"30\"",
            ),
            (
                Some("0s"),
                None,
                "metadata property defaultTTL is \"0s\"; it must be above zero",
            ),
            (
                None,
                Some("-1m"),
                "metadata property maxTTL is not a duration: duration \"-1m\" is negative",
            ),
            (
                Some("2m"),
                Some("1m"),
                "metadata property defaultTTL is 2m0s, above maxTTL (1m0s)",
            ),
            (
                None,
                Some("25h"),
                "metadata property maxTTL is 25h0m0s, above 24h0m0s, the longest TTL a lock may have",
            ),
        ];
        for (default, max, message) in cases {
            assert_eq!(
                limits(default, max),
                Err(message.to_owned()),
                "{default:?} {max:?}"
            );
        }
    }

    #[test]
    fn requests_get_the_default_and_are_held_to_the_maximum() {
        let limits = limits(Some("5s"), Some("1m")).unwrap();
        assert_eq!(limits.ttl(None), Ok(secs(5)));
        assert_eq!(limits.ttl(Some("1m")), Ok(secs(60)));
        assert_eq!(
            limits.ttl(Some("61s")),
            Err(Alpha2Error::MalformedRequest(
                "ttl \"61s\" is longer than the maximum, 1m0s".into()
            ))
        );
        assert!(matches!(
            limits.ttl(Some("0s")),
            Err(Alpha2Error::MalformedRequest(_))
        ));
        assert!(
            matches!(limits.ttl(Some("x")), Err(Alpha2Error::MalformedRequest(m)) if m.starts_with("invalid ttl: "))
        );
    }
}
