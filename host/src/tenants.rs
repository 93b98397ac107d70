//! Which tenant a request is for: its `dapr-api-token` (HTTP header or gRPC metadata) selects
//! one, swapped atomically when the configuration is reloaded.
//!
//! Tokens are looked up by their SHA-256 digest, so no comparison ever runs over the secret's
//! bytes (the time a lookup takes says nothing about how close a guess was), and the tokens
//! themselves are not kept. Without any token configured (no `Tenant` resources and no
//! `DAPR_API_TOKEN`), the one tenant serves every request, as daprd without a token does.

use crate::service::Tenant;
use crate::wasm::Sandbox;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The tenants of one configuration.
pub struct Tenants<S = Sandbox> {
    by_token: HashMap<[u8; 32], Arc<Tenant<S>>>,
    open: Option<Arc<Tenant<S>>>,
}

impl<S> Tenants<S> {
    /// One tenant that needs no token.
    pub fn open(tenant: Tenant<S>) -> Self {
        Tenants {
            by_token: HashMap::new(),
            open: Some(Arc::new(tenant)),
        }
    }

    /// Tenants selected by their tokens (which are distinct).
    pub fn with_tokens(tenants: impl IntoIterator<Item = (String, Tenant<S>)>) -> Self {
        Tenants {
            by_token: tenants
                .into_iter()
                .map(|(token, tenant)| (digest(token.as_bytes()), Arc::new(tenant)))
                .collect(),
            open: None,
        }
    }

    /// The tenant a request presenting `token` (or none) is for; `None` means daprd's 401.
    pub fn select(&self, token: Option<&[u8]>) -> Option<Arc<Tenant<S>>> {
        if let Some(open) = &self.open {
            return Some(open.clone());
        }
        self.by_token.get(&digest(token?)).cloned()
    }

    /// Every tenant, in app id order.
    pub fn iter(&self) -> impl Iterator<Item = &Tenant<S>> {
        let mut tenants: Vec<&Tenant<S>> = self
            .open
            .iter()
            .chain(self.by_token.values())
            .map(|t| &**t)
            .collect();
        tenants.sort_by(|a, b| a.app_id.cmp(&b.app_id));
        tenants.into_iter()
    }

    /// Whether requests must carry a token.
    pub fn need_tokens(&self) -> bool {
        self.open.is_none()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The tenants in force, replaced as a whole on reload: a request keeps the tenant it
/// selected until it ends, so in-flight requests finish on the configuration they began on.
pub struct Registry<S = Sandbox> {
    current: RwLock<Arc<Tenants<S>>>,
}

impl<S> Registry<S> {
    /// A registry serving `tenants`.
    pub fn new(tenants: Tenants<S>) -> Self {
        Registry {
            current: RwLock::new(Arc::new(tenants)),
        }
    }

    /// The tenants in force now.
    pub fn current(&self) -> Arc<Tenants<S>> {
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Puts `tenants` in force for every request from now on.
    pub fn replace(&self, tenants: Tenants<S>) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(tenants);
    }

    /// The tenant a request presenting `token` is for, in the tenants in force now.
    pub fn select(&self, token: Option<&[u8]>) -> Option<Arc<Tenant<S>>> {
        self.current().select(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(app_id: &str) -> Tenant<()> {
        Tenant {
            app_id: app_id.into(),
            service: (),
            alpha2: Default::default(),
        }
    }

    #[test]
    fn tokens_select_tenants_and_anything_else_is_refused() {
        let tenants = Tenants::with_tokens([
            ("t-orders".to_string(), tenant("orders")),
            ("t-billing".to_string(), tenant("billing")),
        ]);
        let app = |token: Option<&[u8]>| tenants.select(token).map(|t| t.app_id.clone());
        assert_eq!(app(Some(b"t-orders")), Some("orders".into()));
        assert_eq!(app(Some(b"t-billing")), Some("billing".into()));
        assert_eq!(app(Some(b"t-order")), None);
        assert_eq!(app(Some(b"")), None);
        assert_eq!(app(None), None);
        let ids: Vec<_> = tenants.iter().map(|t| t.app_id.as_str()).collect();
        assert_eq!(ids, ["billing", "orders"]);
        assert!(tenants.need_tokens());
    }

    #[test]
    fn without_tokens_the_one_tenant_serves_everyone() {
        let tenants = Tenants::open(tenant("app"));
        assert_eq!(tenants.select(None).unwrap().app_id, "app");
        assert_eq!(tenants.select(Some(b"whatever")).unwrap().app_id, "app");
        assert!(!tenants.need_tokens());
    }

    #[test]
    fn a_replaced_configuration_serves_new_requests_while_old_ones_keep_theirs() {
        let registry = Registry::new(Tenants::with_tokens([("a".to_string(), tenant("one"))]));
        let held = registry.select(Some(b"a")).unwrap();
        registry.replace(Tenants::with_tokens([("b".to_string(), tenant("two"))]));
        assert!(registry.select(Some(b"a")).is_none());
        assert_eq!(registry.select(Some(b"b")).unwrap().app_id, "two");
        assert_eq!(held.app_id, "one");
    }
}
