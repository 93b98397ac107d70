//! Request bodies parsed the way daprd's protojson does (`DiscardUnknown`, `AllowPartial`).
//!
//! Field names are accepted in camelCase (`resourceId`) and as proto names (`resource_id`);
//! unknown fields are ignored; `null` and a zero-length body give zero values; an integer may
//! be quoted. Errors carry a protojson-like reason; callers prefix it with daprd's
//! `failed deserializing HTTP body: `.

use crate::lease::{LockRequest, UnlockRequest};
use serde_json::{Map, Number, Value};

/// Parses a try-lock body (`resourceId`, `lockOwner`, `expiryInSeconds`).
pub fn parse_lock_request(body: &[u8]) -> Result<LockRequest, String> {
    let fields = parse_object(body)?;
    check_store_name(&fields)?;
    Ok(LockRequest {
        resource_id: string_field(&fields, "resourceId", "resource_id")?,
        lock_owner: string_field(&fields, "lockOwner", "lock_owner")?,
        expiry_in_seconds: int32_field(&fields, "expiryInSeconds", "expiry_in_seconds")?,
    })
}

/// Parses an unlock body (`resourceId`, `lockOwner`).
pub fn parse_unlock_request(body: &[u8]) -> Result<UnlockRequest, String> {
    let fields = parse_object(body)?;
    check_store_name(&fields)?;
    Ok(UnlockRequest {
        resource_id: string_field(&fields, "resourceId", "resource_id")?,
        lock_owner: string_field(&fields, "lockOwner", "lock_owner")?,
    })
}

/// `storeName` is a field of both proto messages: it is type-checked, then the URL's store
/// name wins, as in daprd.
fn check_store_name(fields: &Map<String, Value>) -> Result<(), String> {
    string_field(fields, "storeName", "store_name").map(drop)
}

/// The top-level JSON object; an empty body is an empty object.
fn parse_object(body: &[u8]) -> Result<Map<String, Value>, String> {
    if body.is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(fields)) => Ok(fields),
        Ok(Value::Null) => Ok(Map::new()),
        Ok(other) => Err(format!(
            "proto: syntax error: unexpected token {other}, want an object"
        )),
        Err(e) => Err(format!("proto: syntax error: {e}")),
    }
}

/// The value of a field given by its JSON name or its proto name; both at once is an error.
fn field<'a>(
    fields: &'a Map<String, Value>,
    json_name: &str,
    proto_name: &str,
) -> Result<Option<&'a Value>, String> {
    match (fields.get(json_name), fields.get(proto_name)) {
        (Some(_), Some(_)) => Err(format!("proto: duplicate field {proto_name:?}")),
        (Some(v), None) | (None, Some(v)) => Ok(Some(v)),
        (None, None) => Ok(None),
    }
}

/// A string field; absent or `null` is the empty string.
fn string_field(
    fields: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
) -> Result<String, String> {
    match field(fields, json_name, proto_name)? {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(format!(
            "proto: invalid value for string field {json_name}: {other}"
        )),
    }
}

/// An int32 field: a JSON number or a quoted one, integral and in range; absent or `null`
/// is 0.
fn int32_field(
    fields: &Map<String, Value>,
    json_name: &str,
    proto_name: &str,
) -> Result<i32, String> {
    let invalid = |v: &Value| format!("proto: invalid value for int32 field {json_name}: {v}");
    match field(fields, json_name, proto_name)? {
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
    fn unicode_and_escapes_round_trip() {
        let parsed = lock(r#"{"resourceId":"caf\u00e9 <&>","lockOwner":"\ud83d\ude00"}"#).unwrap();
        assert_eq!(parsed.resource_id, "café <&>");
        assert_eq!(parsed.lock_owner, "😀");
    }
}
