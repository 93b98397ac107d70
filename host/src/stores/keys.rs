//! Dapr's lock key layout (`pkg/components/lock/lock_config.go`), applied by the host so a
//! guest can never address keys outside its store and tenant.
//!
//! `keyPrefix` strategies: `appid` (default) -> `lock||<appId>||<resourceId>` (or
//! `lock||<resourceId>` with no app id); `name` -> `lock||<storeName>||<resourceId>`;
//! `none` -> `lock||<resourceId>`; any other value -> `lock||<value>||<resourceId>`.
//!
//! Beside each lock key, a backend that keeps its fencing counter as a key of its own
//! (Redis) uses [`fence_key`]: `fence||<prefix>||<resourceId>`, which Dapr never reads
//! (`||` cannot occur in a resource id, so it can never be another lock's key). The counter
//! is never deleted, so a resource's tokens only grow.

const SEPARATOR: &str = "||";
const LOCK_PREFIX: &str = "lock||";
const FENCE_PREFIX: &str = "fence||";

/// The key of the fencing counter of the lock at `lock_key` (`lock||…` becomes `fence||…`).
pub fn fence_key(lock_key: &str) -> String {
    let rest = lock_key.strip_prefix(LOCK_PREFIX).unwrap_or(lock_key);
    let mut key = String::with_capacity(FENCE_PREFIX.len() + rest.len());
    key.push_str(FENCE_PREFIX);
    key.push_str(rest);
    key
}

/// How a store prefixes lock keys (component metadata `keyPrefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPrefix {
    /// The app id of the host (daprd's default).
    AppId,
    /// The lock store's name.
    StoreName,
    /// No prefix: keys are shared by every app on the backend.
    None,
    /// A fixed prefix.
    Custom(String),
}

impl KeyPrefix {
    /// The strategy for a `keyPrefix` metadata value (name and value case-insensitive, as in
    /// daprd); `None` gives the default.
    pub fn from_metadata(value: Option<&str>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(KeyPrefix::AppId);
        };
        let value = value.to_lowercase();
        if value.contains(SEPARATOR) {
            return Err(format!("keyPrefix '{value}' can't contain '{SEPARATOR}'"));
        }
        Ok(match value.as_str() {
            "" | "appid" => KeyPrefix::AppId,
            "name" => KeyPrefix::StoreName,
            "none" => KeyPrefix::None,
            _ => KeyPrefix::Custom(value),
        })
    }

    /// The backend key for `resource_id`, or daprd's error when it contains `||`.
    pub fn lock_key(
        &self,
        store_name: &str,
        app_id: &str,
        resource_id: &str,
    ) -> Result<String, String> {
        if resource_id.contains(SEPARATOR) {
            return Err(format!(
                "input key/keyPrefix '{resource_id}' can't contain '{SEPARATOR}'"
            ));
        }
        let prefix = match self {
            KeyPrefix::AppId if app_id.is_empty() => None,
            KeyPrefix::AppId => Some(app_id),
            KeyPrefix::StoreName => Some(store_name),
            KeyPrefix::None => None,
            KeyPrefix::Custom(prefix) => Some(prefix.as_str()),
        };
        // Built by appending, not `format!`: this runs on every lock call.
        let prefix_len = prefix.map_or(0, |p| p.len() + SEPARATOR.len());
        let mut key = String::with_capacity(LOCK_PREFIX.len() + prefix_len + resource_id.len());
        key.push_str(LOCK_PREFIX);
        if let Some(prefix) = prefix {
            key.push_str(prefix);
            key.push_str(SEPARATOR);
        }
        key.push_str(resource_id);
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    use super::{KeyPrefix, fence_key};

    #[test]
    fn fence_keys_sit_beside_lock_keys() {
        assert_eq!(fence_key("lock||app||res"), "fence||app||res");
        assert_eq!(fence_key("lock||res"), "fence||res");
    }

    #[test]
    fn strategies_from_metadata() {
        assert_eq!(KeyPrefix::from_metadata(None), Ok(KeyPrefix::AppId));
        assert_eq!(
            KeyPrefix::from_metadata(Some("AppID")),
            Ok(KeyPrefix::AppId)
        );
        assert_eq!(
            KeyPrefix::from_metadata(Some("Name")),
            Ok(KeyPrefix::StoreName)
        );
        assert_eq!(KeyPrefix::from_metadata(Some("NONE")), Ok(KeyPrefix::None));
        assert_eq!(
            KeyPrefix::from_metadata(Some("Team-A")),
            Ok(KeyPrefix::Custom("team-a".into()))
        );
        assert!(KeyPrefix::from_metadata(Some("a||b")).is_err());
    }

    #[test]
    fn keys_match_daprd() {
        let key = |p: KeyPrefix, app: &str| p.lock_key("store", app, "res").unwrap();
        assert_eq!(key(KeyPrefix::AppId, "app"), "lock||app||res");
        assert_eq!(key(KeyPrefix::AppId, ""), "lock||res");
        assert_eq!(key(KeyPrefix::StoreName, "app"), "lock||store||res");
        assert_eq!(key(KeyPrefix::None, "app"), "lock||res");
        assert_eq!(
            key(KeyPrefix::Custom("team".into()), "app"),
            "lock||team||res"
        );
    }

    #[test]
    fn separator_in_resource_id_is_daprs_error() {
        assert_eq!(
            KeyPrefix::AppId.lock_key("s", "a", "x||y"),
            Err("input key/keyPrefix 'x||y' can't contain '||'".into())
        );
        // A single bar is fine.
        assert!(KeyPrefix::AppId.lock_key("s", "a", "x|y").is_ok());
    }
}
