//! Log lines: daprd's JSON schema for `--log-as-json` ([`DaprJson`], one object per line:
//! `app_id` (the event's tenant, else `--app-id`), `instance`, `level`, `msg`, `scope`,
//! `time`, `type`, `ver`, and the event's own fields), the banner's lines in either format ([`banner_line`]), and daprd's API log lines
//! for `--enable-api-logging` ([`api_called`]). Nothing logged here carries a token.

use std::fmt;
use std::time::{Duration, SystemTime};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// The target (and so the scope) of API log lines.
pub const API_LOG_TARGET: &str = "wasilock.api-info";

/// The version the `ver` key carries.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Formats events as daprd's JSON log lines.
pub struct DaprJson {
    app_id: String,
    instance: String,
}

impl DaprJson {
    /// Lines of the host whose `--app-id` is `app_id`, on this machine.
    pub fn new(app_id: &str) -> Self {
        DaprJson {
            app_id: app_id.to_string(),
            instance: hostname(),
        }
    }

    /// One line: `msg` at `level` in `scope`, with `fields`.
    fn line(
        &self,
        level: &Level,
        scope: &str,
        msg: String,
        fields: serde_json::Map<String, serde_json::Value>,
    ) -> String {
        let mut object = fields;
        let level = match *level {
            Level::ERROR => "error",
            Level::WARN => "warning",
            Level::INFO => "info",
            Level::DEBUG => "debug",
            Level::TRACE => "trace",
        };
        // An event about one tenant names it; others are the host's own app id's.
        object
            .entry("app_id")
            .or_insert_with(|| self.app_id.as_str().into());
        for (key, value) in [
            ("instance", self.instance.as_str()),
            ("level", level),
            ("scope", scope),
            ("type", "log"),
            ("ver", VERSION),
        ] {
            object.insert(key.into(), value.into());
        }
        object.insert("msg".into(), msg.into());
        object.insert("time".into(), now().into());
        serde_json::Value::Object(object).to_string()
    }
}

impl<S, N> FormatEvent<S, N> for DaprJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut fields = Fields::default();
        event.record(&mut fields);
        let metadata = event.metadata();
        let scope = metadata.target().replace("::", ".");
        let line = self.line(metadata.level(), &scope, fields.msg, fields.others);
        writeln!(writer, "{line}")
    }
}

/// An event's message and its other fields.
#[derive(Default)]
struct Fields {
    msg: String,
    others: serde_json::Map<String, serde_json::Value>,
}

impl Fields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        if field.name() == "message" {
            self.msg = match value {
                serde_json::Value::String(text) => text,
                other => other.to_string(),
            };
        } else {
            self.others.insert(field.name().to_string(), value);
        }
    }
}

impl Visit for Fields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }

    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }

    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }

    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

/// A banner line as printed on stdout: as it is, or, with `json`, as daprd's JSON line at
/// `info` in scope `wasilock.banner` (whatever the log level, so the banner always shows).
pub fn banner_line(json: Option<&DaprJson>, line: &str) -> String {
    match json {
        None => line.to_string(),
        Some(json) => json.line(
            &Level::INFO,
            "wasilock.banner",
            line.to_string(),
            serde_json::Map::new(),
        ),
    }
}

/// Logs daprd's API log line: `HTTP API Called` (`grpc` false) or `gRPC API Called`, with
/// the `method` (HTTP: the verb and the path; gRPC: the full method), the client's user
/// agent, the duration in milliseconds and the answer's code.
pub fn api_called(grpc: bool, method: &str, useragent: &str, duration: Duration, code: &str) {
    let duration = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
    if grpc {
        tracing::info!(target: API_LOG_TARGET, method, useragent, duration, code, "gRPC API Called");
    } else {
        tracing::info!(target: API_LOG_TARGET, method, useragent, duration, code, "HTTP API Called");
    }
}

/// This machine's host name, as daprd's `instance` key carries it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_string())
        .unwrap_or_default()
}

/// The time now, RFC 3339 in UTC with nanoseconds.
fn now() -> String {
    humantime::format_rfc3339_nanos(SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_has_daprds_keys_and_warning_for_warn() {
        let json = DaprJson::new("orders");
        let mut fields = serde_json::Map::new();
        fields.insert("store".into(), "lockstore".into());
        let line = json.line(&Level::WARN, "wasilock.service", "careful".into(), fields);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["level"], "warning");
        assert_eq!(value["type"], "log");
        assert_eq!(value["msg"], "careful");
        assert_eq!(value["scope"], "wasilock.service");
        assert_eq!(value["app_id"], "orders");
        assert_eq!(value["ver"], VERSION);
        assert_eq!(value["store"], "lockstore");
        assert!(value["instance"].is_string());
        let time = value["time"].as_str().unwrap();
        assert!(humantime::parse_rfc3339(time).is_ok(), "{time}");
        assert!(!line.contains('\n'));
    }

    #[test]
    fn banner_lines_stay_plain_unless_json() {
        assert_eq!(banner_line(None, "  store x"), "  store x");
        let json = DaprJson::new("");
        let line = banner_line(Some(&json), "  store x");
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(value["msg"], "  store x");
        assert_eq!(value["level"], "info");
    }
}
