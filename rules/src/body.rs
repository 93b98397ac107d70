//! Request bodies parsed the way daprd's protojson does (`DiscardUnknown`, `AllowPartial`).
//!
//! Field names are accepted in camelCase (`resourceId`) and as proto names (`resource_id`);
//! unknown fields are skipped unparsed, so any syntactically valid JSON value there is
//! accepted (`1e400` too); a field given twice, by either name, is an error; `null` and a
//! zero-length body give zero values; an integer may be quoted. Errors carry a protojson-like
//! reason; callers prefix it with daprd's `failed deserializing HTTP body: `.

use crate::lease::{LockRequest, UnlockRequest};
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::{Number, Value};
use std::fmt;

/// Parses a try-lock body (`resourceId`, `lockOwner`, `expiryInSeconds`).
pub fn parse_lock_request(body: &[u8]) -> Result<LockRequest, String> {
    let (unlock, fields) = parse_unlock_fields(body)?;
    Ok(LockRequest {
        resource_id: unlock.resource_id,
        lock_owner: unlock.lock_owner,
        expiry_in_seconds: int32_field(&fields.expiry_in_seconds, "expiryInSeconds")?,
    })
}

/// Parses an unlock body (`resourceId`, `lockOwner`).
pub fn parse_unlock_request(body: &[u8]) -> Result<UnlockRequest, String> {
    parse_unlock_fields(body).map(|(unlock, _)| unlock)
}

/// Parses what both bodies have, in this order: `storeName` (type-checked only: the URL's
/// store name wins, as in daprd), `resourceId` and `lockOwner`; with the remaining fields.
fn parse_unlock_fields(body: &[u8]) -> Result<(UnlockRequest, Fields), String> {
    let mut fields = parse_fields(body)?;
    string_field(fields.store_name.take(), "storeName")?;
    let unlock = UnlockRequest {
        resource_id: string_field(fields.resource_id.take(), "resourceId")?,
        lock_owner: string_field(fields.lock_owner.take(), "lockOwner")?,
    };
    Ok((unlock, fields))
}

/// The known fields of a body (of either message), their values parsed.
#[derive(Debug, Default)]
struct Fields {
    resource_id: Option<Value>,
    lock_owner: Option<Value>,
    expiry_in_seconds: Option<Value>,
    store_name: Option<Value>,
    /// The proto name of the first field given twice.
    duplicate: Option<&'static str>,
    /// Whether a value was skipped unparsed (an unknown or a repeated field).
    skipped: bool,
}

/// The top-level JSON object's known fields; an empty body or `null` has none.
fn parse_fields(body: &[u8]) -> Result<Fields, String> {
    if body.is_empty() {
        return Ok(Fields::default());
    }
    let syntax = |reason: &dyn fmt::Display| format!("proto: syntax error: {reason}");
    let first = body.iter().find(|b| !b" \t\n\r".contains(b));
    let fields = if first == Some(&b'{') {
        serde_json::from_slice::<Fields>(body).map_err(|e| syntax(&e))?
    } else {
        return match serde_json::from_slice::<Value>(body) {
            Ok(Value::Null) => Ok(Fields::default()),
            Ok(other) => Err(syntax(&format!("unexpected token {other}, want an object"))),
            Err(e) => Err(syntax(&e)),
        };
    };
    // Skipped values were only scanned: check what protojson checks in every string. (The
    // parsed ones were checked by the parser: UTF-8, and no lone surrogate escape.)
    if fields.skipped {
        let text = std::str::from_utf8(body).map_err(|_| syntax(&"invalid UTF-8 in string"))?;
        if let Some(escape) = lone_surrogate(text) {
            return Err(syntax(&format!("invalid escape code {escape:?} in string")));
        }
    }
    match fields.duplicate {
        Some(name) => Err(format!("proto: duplicate field {name:?}")),
        None => Ok(fields),
    }
}

impl<'de> Deserialize<'de> for Fields {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(FieldsVisitor)
    }
}

/// Reads the top-level object: known fields as values, unknown ones skipped unparsed.
struct FieldsVisitor;

impl<'de> Visitor<'de> for FieldsVisitor {
    type Value = Fields;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Fields, A::Error> {
        let mut fields = Fields::default();
        while let Some(key) = map.next_key::<Key>()? {
            let (slot, proto_name) = match key {
                Key::ResourceId => (&mut fields.resource_id, "resource_id"),
                Key::LockOwner => (&mut fields.lock_owner, "lock_owner"),
                Key::ExpiryInSeconds => (&mut fields.expiry_in_seconds, "expiry_in_seconds"),
                Key::StoreName => (&mut fields.store_name, "store_name"),
                Key::Unknown => {
                    fields.skipped = true;
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            if slot.is_some() {
                fields.duplicate.get_or_insert(proto_name);
                fields.skipped = true;
                map.next_value::<IgnoredAny>()?;
            } else {
                *slot = Some(map.next_value()?);
            }
        }
        Ok(fields)
    }
}

/// A top-level key, by either of its names; read without copying it.
enum Key {
    ResourceId,
    LockOwner,
    ExpiryInSeconds,
    StoreName,
    Unknown,
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

/// Names a [`Key`] from the parser's text (borrowed or transient; never kept).
struct KeyVisitor;

impl Visitor<'_> for KeyVisitor {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match key {
            "resourceId" | "resource_id" => Key::ResourceId,
            "lockOwner" | "lock_owner" => Key::LockOwner,
            "expiryInSeconds" | "expiry_in_seconds" => Key::ExpiryInSeconds,
            "storeName" | "store_name" => Key::StoreName,
            _ => Key::Unknown,
        })
    }
}

/// The first `\uXXXX` escape of a surrogate that is not the high half of a pair, in JSON
/// text that parsed (protojson rejects one anywhere, skipped fields included).
fn lone_surrogate(text: &str) -> Option<&str> {
    let escape_at = |i: usize| {
        let escape = text.get(i..i + 6)?.strip_prefix("\\u")?;
        Some((i, u16::from_str_radix(escape, 16).ok()?))
    };
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'\\' {
            i += 1;
            continue;
        }
        match escape_at(i) {
            Some((at, 0xD800..=0xDBFF)) => match escape_at(at + 6) {
                Some((_, 0xDC00..=0xDFFF)) => i = at + 12,
                _ => return text.get(at..at + 6),
            },
            Some((at, 0xDC00..=0xDFFF)) => return text.get(at..at + 6),
            Some(_) => i += 6,
            // Any other escape is two characters.
            None => i += 2,
        }
    }
    None
}

/// A string field; absent or `null` is the empty string.
fn string_field(value: Option<Value>, json_name: &str) -> Result<String, String> {
    match value {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(format!(
            "proto: invalid value for string field {json_name}: {other}"
        )),
    }
}

/// An int32 field: a JSON number or a quoted one, integral and in range; absent or `null`
/// is 0.
fn int32_field(value: &Option<Value>, json_name: &str) -> Result<i32, String> {
    let invalid = |v: &Value| format!("proto: invalid value for int32 field {json_name}: {v}");
    match value {
        None | Some(Value::Null) => Ok(0),
        Some(v @ Value::Number(n)) => number_to_i32(n).ok_or_else(|| invalid(v)),
        Some(v @ Value::String(s)) => serde_json::from_str::<Number>(s)
            .ok()
            .filter(|_| !s.starts_with(char::is_whitespace) && !s.ends_with(char::is_whitespace))
            .and_then(|n| number_to_i32(&n))
            .ok_or_else(|| invalid(v)),
        Some(v) => Err(invalid(v)),
    }
}

/// A JSON number as an int32, when it is integral and in range (`15`, `1.5e1`, `15.0`).
fn number_to_i32(n: &Number) -> Option<i32> {
    if let Some(i) = n.as_i64() {
        return i32::try_from(i).ok();
    }
    if n.is_u64() {
        return None;
    }
    let f = n.as_f64()?;
    let in_range = f >= f64::from(i32::MIN) && f <= f64::from(i32::MAX);
    (f.fract() == 0.0 && in_range).then_some(f as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lock(body: &str) -> Result<LockRequest, String> {
        parse_lock_request(body.as_bytes())
    }

    fn req(resource: &str, owner: &str, expiry: i32) -> LockRequest {
        LockRequest {
            resource_id: resource.into(),
            lock_owner: owner.into(),
            expiry_in_seconds: expiry,
        }
    }

    #[test]
    fn camel_case_and_proto_names() {
        let expected = req("r", "o", 5);
        assert_eq!(
            lock(r#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":5}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            lock(r#"{"resource_id":"r","lock_owner":"o","expiry_in_seconds":5}"#),
            Ok(expected.clone())
        );
        assert_eq!(
            lock(r#"{"resource_id":"r","lockOwner":"o","expiryInSeconds":5}"#),
            Ok(expected)
        );
    }

    #[test]
    fn empty_body_null_and_missing_fields_are_zero_values() {
        assert_eq!(lock(""), Ok(LockRequest::default()));
        assert_eq!(lock("null"), Ok(LockRequest::default()));
        assert_eq!(lock("{}"), Ok(LockRequest::default()));
        assert_eq!(
            lock(r#"{"resourceId":null,"lockOwner":null,"expiryInSeconds":null}"#),
            Ok(LockRequest::default())
        );
        assert_eq!(parse_unlock_request(b""), Ok(UnlockRequest::default()));
    }

    #[test]
    fn unknown_fields_are_ignored() {
        assert_eq!(
            lock(
                r#"{"resourceId":"r","extra":{"deep":[1,2]},"lockOwner":"o","expiryInSeconds":1}"#
            ),
            Ok(req("r", "o", 1))
        );
        assert_eq!(
            parse_unlock_request(br#"{"resourceId":"r","lockOwner":"o","expiryInSeconds":"x"}"#),
            Ok(UnlockRequest {
                resource_id: "r".into(),
                lock_owner: "o".into()
            })
        );
    }

    #[test]
    fn quoted_and_integral_numbers_are_accepted() {
        assert_eq!(
            lock(r#"{"expiryInSeconds":"15"}"#)
                .unwrap()
                .expiry_in_seconds,
            15
        );
        assert_eq!(
            lock(r#"{"expiryInSeconds":"-3"}"#)
                .unwrap()
                .expiry_in_seconds,
            -3
        );
        assert_eq!(
            lock(r#"{"expiryInSeconds":15.0}"#)
                .unwrap()
                .expiry_in_seconds,
            15
        );
        assert_eq!(
            lock(r#"{"expiryInSeconds":1.5e1}"#)
                .unwrap()
                .expiry_in_seconds,
            15
        );
        assert_eq!(
            lock(r#"{"expiryInSeconds":2147483647}"#)
                .unwrap()
                .expiry_in_seconds,
            i32::MAX
        );
        assert_eq!(
            lock(r#"{"expiryInSeconds":-2147483648}"#)
                .unwrap()
                .expiry_in_seconds,
            i32::MIN
        );
    }

    #[test]
    fn non_integral_or_out_of_range_expiry_is_malformed() {
        for bad in [
            "1.5",
            "2147483648",
            "-2147483649",
            "1e20",
            "18446744073709551615",
            "\"1.5\"",
            "\"abc\"",
            "\" 5\"",
            "\"\"",
            "true",
            "[]",
            "{}",
        ] {
            let err = lock(&format!(r#"{{"expiryInSeconds":{bad}}}"#)).unwrap_err();
            assert!(
                err.starts_with("proto: invalid value for int32 field expiryInSeconds"),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn non_string_ids_are_malformed() {
        for bad in ["5", "true", "[]", "{}"] {
            let err = lock(&format!(r#"{{"resourceId":{bad}}}"#)).unwrap_err();
            assert!(
                err.starts_with("proto: invalid value for string field resourceId"),
                "{err}"
            );
            let err =
                parse_unlock_request(format!(r#"{{"lock_owner":{bad}}}"#).as_bytes()).unwrap_err();
            assert!(
                err.starts_with("proto: invalid value for string field lockOwner"),
                "{err}"
            );
        }
        assert!(lock(r#"{"storeName":1}"#).is_err());
    }

    #[test]
    fn invalid_json_and_non_objects_are_malformed() {
        for bad in [
            "{",
            "not json",
            "[]",
            "5",
            "\"s\"",
            " ",
            "{\"a\":1,}",
            "\u{0}",
        ] {
            let err = lock(bad).unwrap_err();
            assert!(err.starts_with("proto: syntax error"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn both_names_for_one_field_is_malformed() {
        let err = lock(r#"{"resourceId":"a","resource_id":"b"}"#).unwrap_err();
        assert_eq!(err, "proto: duplicate field \"resource_id\"");
    }

    #[test]
    fn unknown_fields_are_skipped_unparsed() {
        // Found by `a_valid_lock_body_parses_back_to_its_fields`: a number beyond f64 in an
        // unknown field failed the whole body, where protojson only checks its syntax.
        assert_eq!(
            lock(r#"{"x":1e400,"y":[-1e999,{"z":1E+400}],"resourceId":"r","expiryInSeconds":2}"#),
            Ok(req("r", "", 2))
        );
        for bad in [
            r#"{"x":1e}"#,
            r#"{"x":01}"#,
            r#"{"x":[1,]}"#,
            "{\"x\":\"a\tb\"}",
        ] {
            let err = lock(bad).unwrap_err();
            assert!(err.starts_with("proto: syntax error"), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_field_given_twice_is_malformed() {
        for (body, name) in [
            (r#"{"resourceId":"a","resourceId":"a"}"#, "resource_id"),
            (r#"{"lock_owner":"o","x":1,"lockOwner":null}"#, "lock_owner"),
            (
                r#"{"expiryInSeconds":1,"expiry_in_seconds":1}"#,
                "expiry_in_seconds",
            ),
            (r#"{"storeName":"s","storeName":"s"}"#, "store_name"),
        ] {
            assert_eq!(lock(body), Err(format!("proto: duplicate field {name:?}")));
        }
        // Unknown fields may repeat.
        assert_eq!(lock(r#"{"x":1,"x":"y"}"#), Ok(LockRequest::default()));
    }

    #[test]
    fn invalid_utf8_is_malformed_even_in_unknown_fields() {
        for bad in [
            &b"{\"x\":\"\xff\"}"[..],
            b"{\"x\":[\"\xc3\"]}",
            b"{\"lockOwner\":\"\xe9\"}",
        ] {
            let err = parse_lock_request(bad).unwrap_err();
            assert!(err.starts_with("proto: syntax error"), "{err}");
        }
    }

    #[test]
    fn lone_surrogates_are_malformed_even_in_unknown_fields() {
        for bad in [
            r#"{"x":"\ud800"}"#,
            r#"{"x":"\udc00"}"#,
            r#"{"x":["\ud83d\u0041"]}"#,
            r#"{"x":"\ud83d\ude00\udE00"}"#,
            r#"{"\ud800":1}"#,
        ] {
            let err = lock(bad).unwrap_err();
            assert!(err.starts_with("proto: syntax error"), "{bad}: {err}");
        }
        assert_eq!(
            lock(r#"{"x":"\ud83d\ude00 \\ud800 \\\\","lockOwner":"\u00e9\\udc00"}"#),
            Ok(req("", "é\\udc00", 0))
        );
    }

    #[test]
    fn unicode_and_escapes_round_trip() {
        let parsed = lock(r#"{"resourceId":"caf\u00e9 <&>","lockOwner":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(parsed.resource_id, "café <&>");
        assert_eq!(parsed.lock_owner, "😀");
    }
}

/// Generators of request bodies for the property tests here and in [`crate::http`].
#[cfg(test)]
pub(crate) mod strategies {
    use crate::lease::{LockRequest, UnlockRequest};
    use proptest::prelude::*;
    use proptest::sample::{Index, select};

    /// The field names a body may carry, and near misses (case, spacing) that are unknown.
    const FIELD_NAMES: &[&str] = &[
        "resourceId",
        "resource_id",
        "lockOwner",
        "lock_owner",
        "expiryInSeconds",
        "expiry_in_seconds",
        "storeName",
        "store_name",
        "ResourceId",
        "resourceid",
        "LOCK_OWNER",
        "expiryInSeconds ",
        "",
    ];

    /// Numbers around the int32 and int64 limits and in every JSON form.
    const NUMBERS: &[&str] = &[
        "0",
        "-0",
        "1",
        "-1",
        "15",
        "2147483647",
        "2147483648",
        "-2147483648",
        "-2147483649",
        "9223372036854775807",
        "-9223372036854775809",
        "18446744073709551616",
        "1.5",
        "15.0",
        "1.5e1",
        "1E1",
        "2147483647.0",
        "2147483647.5",
        "21474836470e-1",
        "1e20",
        "1e400",
        "-1e-400",
        "0.0000001",
    ];

    /// String literals a generator of Rust strings never writes: lone surrogates, a raw
    /// control character, an invalid escape, an escaped backslash before `u`.
    const ODD_STRINGS: &[&str] = &[
        r#""\ud800""#,
        r#""\udc00x""#,
        r#""\ud83d\u0041""#,
        r#""\ud83d\ude00""#,
        r#""\\ud800""#,
        "\"a\u{1}b\"",
        r#""\x""#,
    ];

    /// JSON whitespace, usually none.
    fn ws() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => Just(String::new()),
            1 => prop::collection::vec(select(&[" ", "\n", "\t", "\r"][..]), 1..3)
                .prop_map(|parts| parts.concat()),
        ]
    }

    /// `text` as a JSON string literal, each character written plainly or escaped at random
    /// (`\uXXXX` in either case, surrogate pairs, short escapes).
    pub fn json_string(text: String) -> impl Strategy<Value = String> {
        let len = text.chars().count();
        prop::collection::vec(0u8..4, len).prop_map(move |choices| {
            let mut out = String::from("\"");
            for (c, choice) in text.chars().zip(choices) {
                let short = match c {
                    '"' => Some("\\\""),
                    '\\' => Some("\\\\"),
                    '/' => Some("\\/"),
                    '\n' => Some("\\n"),
                    '\t' => Some("\\t"),
                    '\r' => Some("\\r"),
                    '\u{8}' => Some("\\b"),
                    '\u{c}' => Some("\\f"),
                    _ => None,
                };
                let must_escape = matches!(c, '"' | '\\') || c < ' ';
                match short {
                    Some(escape) if choice == 2 || (must_escape && choice == 3) => {
                        out.push_str(escape);
                    }
                    _ if choice < 2 || must_escape => {
                        for unit in c.encode_utf16(&mut [0; 2]) {
                            if choice == 0 {
                                out.push_str(&format!("\\u{unit:04x}"));
                            } else {
                                out.push_str(&format!("\\u{unit:04X}"));
                            }
                        }
                    }
                    _ => out.push(c),
                }
            }
            out.push('"');
            out
        })
    }

    /// A JSON value, nested a little: scalars (numbers from [`NUMBERS`] and any integer),
    /// strings with escapes, arrays and objects; with `odd`, also [`ODD_STRINGS`] (then not
    /// always valid).
    fn json_value(odd: bool) -> BoxedStrategy<String> {
        let valid = prop_oneof![
            select(&["null", "true", "false"][..]).prop_map(str::to_owned),
            select(NUMBERS).prop_map(str::to_owned),
            any::<i64>().prop_map(|n| n.to_string()),
            select(NUMBERS).prop_map(|n| format!("\"{n}\"")),
            any::<String>().prop_flat_map(json_string),
        ];
        let leaf = if odd {
            prop_oneof![4 => valid, 1 => select(ODD_STRINGS).prop_map(str::to_owned)].boxed()
        } else {
            valid.boxed()
        };
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((any::<String>().prop_flat_map(json_string), inner), 0..4)
                    .prop_map(|members| object(&members)),
            ]
        })
        .boxed()
    }

    /// A JSON object of already-encoded keys and values.
    fn object(members: &[(String, String)]) -> String {
        let members: Vec<String> = members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
        format!("{{{}}}", members.join(","))
    }

    /// A field as the parser must read it: `None` when the value is the zero value and the
    /// field is left out, else the encoded key (either name) and value, with whitespace.
    type Field = Option<(String, String)>;

    /// A string field holding `value`: left out, `null` or `""` when empty.
    fn string_field(names: [&'static str; 2], value: String) -> BoxedStrategy<Field> {
        let zero = value.is_empty();
        keyed(names, or_left_out(zero, json_string(value)))
    }

    /// `encoded`; when the value is the zero value, also left out (`None`) or `null`.
    fn or_left_out(
        zero: bool,
        encoded: impl Strategy<Value = String> + 'static,
    ) -> BoxedStrategy<Option<String>> {
        if zero {
            prop_oneof![
                Just(None),
                Just(Some("null".to_owned())),
                encoded.prop_map(Some)
            ]
            .boxed()
        } else {
            encoded.prop_map(Some).boxed()
        }
    }

    /// An int32 field holding `value`: plain, quoted, or in a float form; left out or `null`
    /// when 0.
    fn int32_field(names: [&'static str; 2], value: i32) -> BoxedStrategy<Field> {
        let mut forms = vec![
            value.to_string(),
            format!("\"{value}\""),
            format!("{value}.0"),
            format!("{value}E0"),
            format!("\"{value}.0\""),
        ];
        if value != 0 {
            forms.push(format!("{value}0e-1"));
        }
        keyed(names, or_left_out(value == 0, select(forms)))
    }

    /// `value` under either of `names`, the key itself written with random escapes.
    fn keyed(
        names: [&'static str; 2],
        value: BoxedStrategy<Option<String>>,
    ) -> BoxedStrategy<Field> {
        (
            select(names.to_vec()).prop_flat_map(|name| json_string(name.to_owned())),
            value,
            ws(),
            ws(),
        )
            .prop_map(|(key, value, before, after)| {
                value.map(|value| {
                    (
                        format!("{before}{key}{after}"),
                        format!("{after}{value}{before}"),
                    )
                })
            })
            .boxed()
    }

    /// Fields the parser ignores or only type-checks: unknown names and `storeName`.
    fn ignored_fields() -> impl Strategy<Value = Vec<(String, String)>> {
        let unknown = (
            any::<String>().prop_flat_map(|name| json_string(format!("x-{name}"))),
            json_value(false),
        );
        let store_name =
            any::<String>().prop_flat_map(|name| string_field(["storeName", "store_name"], name));
        (prop::collection::vec(unknown, 0..3), store_name).prop_map(|(mut fields, store)| {
            fields.extend(store);
            fields
        })
    }

    /// A body of `fields` (left-out ones dropped) and `ignored` ones, in a random order.
    fn body(fields: Vec<Field>, ignored: Vec<(String, String)>) -> impl Strategy<Value = Vec<u8>> {
        let members: Vec<(String, String)> = fields.into_iter().flatten().chain(ignored).collect();
        (Just(members).prop_shuffle(), ws()).prop_map(|(members, around)| {
            format!("{around}{}{around}", object(&members)).into_bytes()
        })
    }

    /// A valid try-lock body of any fields and the request it encodes.
    pub fn lock_body() -> impl Strategy<Value = (LockRequest, Vec<u8>)> {
        lock_body_of(any::<String>(), any::<String>(), any::<i32>())
    }

    /// A valid try-lock body of fields drawn from the given strategies, and the request it
    /// encodes.
    pub fn lock_body_of(
        resource: impl Strategy<Value = String>,
        owner: impl Strategy<Value = String>,
        expiry: impl Strategy<Value = i32>,
    ) -> impl Strategy<Value = (LockRequest, Vec<u8>)> {
        (resource, owner, expiry).prop_flat_map(|(resource, owner, expiry)| {
            let request = LockRequest {
                resource_id: resource.clone(),
                lock_owner: owner.clone(),
                expiry_in_seconds: expiry,
            };
            let fields = (
                string_field(["resourceId", "resource_id"], resource),
                string_field(["lockOwner", "lock_owner"], owner),
                int32_field(["expiryInSeconds", "expiry_in_seconds"], expiry),
                ignored_fields(),
            );
            (
                Just(request),
                fields.prop_flat_map(|(r, o, e, ignored)| body(vec![r, o, e], ignored)),
            )
        })
    }

    /// A valid unlock body of any fields and the request it encodes.
    pub fn unlock_body() -> impl Strategy<Value = (UnlockRequest, Vec<u8>)> {
        unlock_body_of(any::<String>(), any::<String>())
    }

    /// A valid unlock body of fields drawn from the given strategies, and the request it
    /// encodes.
    pub fn unlock_body_of(
        resource: impl Strategy<Value = String>,
        owner: impl Strategy<Value = String>,
    ) -> impl Strategy<Value = (UnlockRequest, Vec<u8>)> {
        (resource, owner).prop_flat_map(|(resource, owner)| {
            let request = UnlockRequest {
                resource_id: resource.clone(),
                lock_owner: owner.clone(),
            };
            let fields = (
                string_field(["resourceId", "resource_id"], resource),
                string_field(["lockOwner", "lock_owner"], owner),
                ignored_fields(),
            );
            (
                Just(request),
                fields.prop_flat_map(|(r, o, ignored)| body(vec![r, o], ignored)),
            )
        })
    }

    /// A change that usually breaks the JSON.
    #[derive(Debug, Clone)]
    enum Damage {
        None,
        Truncate(Index),
        Insert(Index, u8),
        Remove(Index),
    }

    /// Bodies near valid ones: known field names and near misses with values of any type,
    /// numbers at the limits, nesting and escapes; sometimes not an object, sometimes damaged.
    pub fn json_ish_body() -> impl Strategy<Value = Vec<u8>> {
        let key = prop_oneof![
            3 => select(FIELD_NAMES).prop_map(str::to_owned),
            1 => any::<String>(),
        ]
        .prop_flat_map(json_string);
        let members = prop::collection::vec((key, json_value(true)), 0..6);
        let top = prop_oneof![
            4 => members.prop_map(|members| object(&members)),
            1 => json_value(true),
        ];
        let damage = prop_oneof![
            3 => Just(Damage::None),
            1 => any::<Index>().prop_map(Damage::Truncate),
            1 => (any::<Index>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert(at, byte)),
            1 => any::<Index>().prop_map(Damage::Remove),
        ];
        (top, damage).prop_map(|(text, damage)| {
            let mut bytes = text.into_bytes();
            match damage {
                Damage::None => {}
                Damage::Truncate(at) => bytes.truncate(at.index(bytes.len() + 1)),
                Damage::Insert(at, byte) => bytes.insert(at.index(bytes.len() + 1), byte),
                Damage::Remove(at) if !bytes.is_empty() => {
                    bytes.remove(at.index(bytes.len()));
                }
                Damage::Remove(_) => {}
            }
            bytes
        })
    }
}

#[cfg(test)]
mod properties {
    use super::strategies::{json_ish_body, lock_body, unlock_body};
    use super::*;
    use proptest::prelude::*;

    /// A parse error carries a protojson-like reason.
    fn is_proto_error<T>(parsed: &Result<T, String>) -> bool {
        parsed
            .as_ref()
            .err()
            .is_none_or(|e| e.starts_with("proto: "))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn a_valid_lock_body_parses_back_to_its_fields((request, body) in lock_body()) {
            prop_assert_eq!(parse_lock_request(&body), Ok(request), "{}", String::from_utf8_lossy(&body));
        }

        #[test]
        fn a_valid_unlock_body_parses_back_to_its_fields((request, body) in unlock_body()) {
            prop_assert_eq!(parse_unlock_request(&body), Ok(request), "{}", String::from_utf8_lossy(&body));
        }

        #[test]
        fn any_bytes_parse_or_fail_with_a_proto_reason(body in prop::collection::vec(any::<u8>(), 0..64)) {
            prop_assert!(is_proto_error(&parse_lock_request(&body)));
            prop_assert!(is_proto_error(&parse_unlock_request(&body)));
        }

        #[test]
        fn near_valid_bodies_parse_or_fail_with_a_proto_reason(body in json_ish_body()) {
            prop_assert!(is_proto_error(&parse_lock_request(&body)), "{}", String::from_utf8_lossy(&body));
            prop_assert!(is_proto_error(&parse_unlock_request(&body)), "{}", String::from_utf8_lossy(&body));
        }
    }
}
