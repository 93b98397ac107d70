//! Daprd's metadata with the tenant's lock stores: daprd's answer is kept whole (its id,
//! actors, subscriptions, every field wasilock does not know), but its lock components
//! (`lock.*`) give way to wasilock's lock stores, and `extended` gains `wasilockVersion`.
//! Pure: HTTP JSON and gRPC `GetMetadataResponse` bytes in, merged bytes out.

use crate::api::grpc::proto::{GetMetadataResponse, RegisteredComponents};
use prost::Message;
use prost::encoding::{WireType, decode_key, decode_varint};
use serde_json::Value;

/// The `extended` key naming wasilock's version.
const WASILOCK_VERSION: &str = "wasilockVersion";

/// `GET /v1.0/metadata`: daprd's JSON body `upstream` with the lock stores of `ours`
/// (wasilock's own body for the tenant); `None` when daprd's body is not a JSON object.
pub(super) fn merge_json(upstream: &[u8], ours: &str) -> Option<String> {
    let Ok(Value::Object(mut merged)) = serde_json::from_slice::<Value>(upstream) else {
        return None;
    };
    let Ok(Value::Object(ours)) = serde_json::from_str::<Value>(ours) else {
        return None;
    };
    let is_lock = |c: &Value| {
        c.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("lock."))
    };
    let mut components: Vec<Value> = match merged.remove("components") {
        Some(Value::Array(components)) => components.into_iter().filter(|c| !is_lock(c)).collect(),
        _ => Vec::new(),
    };
    if let Some(Value::Array(stores)) = ours.get("components") {
        components.extend(stores.iter().cloned());
    }
    merged.insert("components".into(), Value::Array(components));
    let version = ours.get("extended").and_then(|e| e.get(WASILOCK_VERSION));
    if let Some(version) = version {
        let extended = merged
            .entry("extended")
            .or_insert_with(|| Value::Object(serde_json::Map::new()));
        if let Value::Object(extended) = extended {
            extended.insert(WASILOCK_VERSION.into(), version.clone());
        }
    }
    serde_json::to_string(&merged).ok()
}

/// `GetMetadata`: daprd's encoded `GetMetadataResponse` with the lock stores of `ours`.
/// Works on the wire format, so that every field of daprd's answer is kept even where
/// wasilock's trimmed proto does not know it; `None` when daprd's bytes do not parse.
pub(super) fn merge_grpc(upstream: &[u8], ours: &GetMetadataResponse) -> Option<Vec<u8>> {
    let mut merged = Vec::with_capacity(upstream.len());
    let mut rest = upstream;
    while !rest.is_empty() {
        let field_start = rest;
        let (tag, wire_type) = decode_key(&mut rest).ok()?;
        let mut value: &[u8] = &[];
        let skip = match wire_type {
            WireType::Varint => {
                decode_varint(&mut rest).ok()?;
                0
            }
            WireType::SixtyFourBit => 8,
            WireType::ThirtyTwoBit => 4,
            WireType::LengthDelimited => {
                let len = usize::try_from(decode_varint(&mut rest).ok()?).ok()?;
                value = rest.get(..len)?;
                len
            }
            WireType::StartGroup | WireType::EndGroup => return None,
        };
        rest = rest.get(skip..)?;
        let field = &field_start[..field_start.len() - rest.len()];
        let is_lock = tag == 3
            && wire_type == WireType::LengthDelimited
            && RegisteredComponents::decode(value)
                .ok()?
                .r#type
                .starts_with("lock.");
        if !is_lock {
            merged.extend_from_slice(field);
        }
    }
    let added = GetMetadataResponse {
        registered_components: ours.registered_components.clone(),
        extended_metadata: ours
            .extended_metadata
            .iter()
            .filter(|(k, _)| *k == WASILOCK_VERSION)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        ..GetMetadataResponse::default()
    };
    added.encode(&mut merged).ok()?;
    Some(merged)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::grpc::proto::ActorRuntime;

    fn component(name: &str, component_type: &str) -> RegisteredComponents {
        RegisteredComponents {
            name: name.into(),
            r#type: component_type.into(),
            version: "v1".into(),
            capabilities: Vec::new(),
        }
    }

    #[test]
    fn json_keeps_daprd_s_answer_and_replaces_its_lock_stores() {
        let upstream = br#"{"id":"orders","runtimeVersion":"1.16.0","actors":[{"type":"cart","count":2}],
            "components":[{"name":"statestore","type":"state.redis","version":"v1","capabilities":["ETAG"]},
                          {"name":"theirs","type":"lock.redis","version":"v1","capabilities":[]}],
            "extended":{"appCommand":"python app.py"},"subscriptions":[{"pubsubname":"pubsub","topic":"t"}]}"#;
        let ours = r#"{"id":"orders","components":[{"name":"lockstore","type":"lock.embedded","version":"v1","capabilities":[]}],"extended":{"daprRuntimeVersion":"1.18.3","wasilockVersion":"9.9.9"}}"#;
        let merged: Value = serde_json::from_str(&merge_json(upstream, ours).unwrap()).unwrap();
        assert_eq!(merged["runtimeVersion"], "1.16.0");
        assert_eq!(merged["actors"][0]["type"], "cart");
        assert_eq!(merged["subscriptions"][0]["topic"], "t");
        let names: Vec<_> = merged["components"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["statestore", "lockstore"]);
        assert_eq!(merged["extended"]["appCommand"], "python app.py");
        assert_eq!(merged["extended"]["wasilockVersion"], "9.9.9");
        assert_eq!(merged["extended"].get("daprRuntimeVersion"), None);
        assert_eq!(merge_json(b"[]", ours), None);
        assert_eq!(merge_json(b"not json", ours), None);
    }

    #[test]
    fn grpc_keeps_fields_it_does_not_know_and_replaces_lock_stores() {
        let daprs = GetMetadataResponse {
            id: "orders".into(),
            registered_components: vec![
                component("statestore", "state.redis"),
                component("theirs", "lock.redis"),
            ],
            extended_metadata: [("appCommand".to_string(), "run".to_string())].into(),
            runtime_version: "1.16.0".into(),
            enabled_features: vec!["f".into()],
            actor_runtime: Some(ActorRuntime {
                runtime_status: 2,
                host_ready: true,
            }),
        };
        let mut upstream = daprs.encode_to_vec();
        // A field this proto does not know (daprd's `subscriptions = 6`), and a fixed64.
        upstream.extend_from_slice(&[0x32, 0x03, b's', b'u', b'b', 0x79, 1, 2, 3, 4, 5, 6, 7, 8]);
        let ours = GetMetadataResponse {
            id: "ignored".into(),
            registered_components: vec![component("lockstore", "lock.embedded")],
            extended_metadata: [
                ("wasilockVersion".to_string(), "9.9.9".to_string()),
                ("daprRuntimeVersion".to_string(), "1.18.3".to_string()),
            ]
            .into(),
            ..GetMetadataResponse::default()
        };
        let merged = merge_grpc(&upstream, &ours).unwrap();
        let unknown = [0x32, 0x03, b's', b'u', b'b'];
        assert!(merged.windows(unknown.len()).any(|w| w == unknown));
        let decoded = GetMetadataResponse::decode(&merged[..]).unwrap();
        assert_eq!(decoded.id, "orders");
        assert_eq!(decoded.runtime_version, "1.16.0");
        assert_eq!(decoded.actor_runtime, daprs.actor_runtime);
        assert_eq!(
            decoded.registered_components,
            [
                component("statestore", "state.redis"),
                component("lockstore", "lock.embedded")
            ]
        );
        assert_eq!(decoded.extended_metadata["appCommand"], "run");
        assert_eq!(decoded.extended_metadata["wasilockVersion"], "9.9.9");
        assert_eq!(decoded.extended_metadata.get("daprRuntimeVersion"), None);
        assert_eq!(merge_grpc(&[0x0a, 0x05, b'x'], &ours), None);
    }
}
