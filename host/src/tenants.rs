//! Which tenant a request is for: its `dapr-api-token` (HTTP header or gRPC metadata) selects
//! one, swapped atomically when the configuration is reloaded.
//!
//! Over mutual TLS, a client certificate that presents a tenant's `clientIdentity` selects
//! that tenant; a token sent beside it must then select the same tenant, or the request is
//! refused. A certificate that presents no tenant's identity leaves the choice to the token.
//!
//! Tokens are looked up by their SHA-256 digest, so no comparison ever runs over the secret's
//! bytes (the time a lookup takes says nothing about how close a guess was), and the tokens
//! themselves are not kept. Without any token configured (no `Tenant` resources and no
//! `DAPR_API_TOKEN`), the one tenant serves every request, as daprd without a token does.
//! Each tenant may have an [`Upstream`]: the daprd its other Dapr calls go to.

use crate::config::tenants::ClientIdentity;
use crate::service::Tenant;
use crate::upstream::Upstream;
use crate::wasm::Sandbox;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// The tenants of one configuration.
pub struct Tenants<S = Sandbox> {
    by_token: HashMap<[u8; 32], Arc<Tenant<S>>>,
    by_identity: HashMap<ClientIdentity, Arc<Tenant<S>>>,
    open: Option<Arc<Tenant<S>>>,
    upstreams: HashMap<String, Arc<Upstream>>,
    default_upstream: Option<Arc<Upstream>>,
}

impl<S> Tenants<S> {
    /// One tenant that needs no token.
    pub fn open(tenant: Tenant<S>) -> Self {
        Tenants {
            by_token: HashMap::new(),
            by_identity: HashMap::new(),
            open: Some(Arc::new(tenant)),
            upstreams: HashMap::new(),
            default_upstream: None,
        }
    }

    /// Tenants selected by their tokens (which are distinct).
    pub fn with_tokens(tenants: impl IntoIterator<Item = (String, Tenant<S>)>) -> Self {
        Tenants {
            by_token: tenants
                .into_iter()
                .map(|(token, tenant)| (digest(token.as_bytes()), Arc::new(tenant)))
                .collect(),
            by_identity: HashMap::new(),
            open: None,
            upstreams: HashMap::new(),
            default_upstream: None,
        }
    }

    /// These tenants with upstreams: `by_app_id` for the tenants it names, and `default`
    /// for the health checks of requests that select no tenant (no upstream: none).
    pub fn with_upstreams(
        mut self,
        by_app_id: impl IntoIterator<Item = (String, Upstream)>,
        default: Option<Upstream>,
    ) -> Self {
        self.upstreams = by_app_id
            .into_iter()
            .filter(|(_, upstream)| !upstream.is_empty())
            .map(|(app_id, upstream)| (app_id, Arc::new(upstream)))
            .collect();
        self.default_upstream = default.filter(|u| !u.is_empty()).map(Arc::new);
        self
    }

    /// The upstream of the tenant with this app id, if it has one.
    pub fn upstream(&self, app_id: &str) -> Option<Arc<Upstream>> {
        self.upstreams.get(app_id).cloned()
    }

    /// The upstream the health checks follow for a request presenting `token`: its tenant's,
    /// else the default one.
    pub fn health_upstream(&self, token: Option<&[u8]>) -> Option<Arc<Upstream>> {
        self.select(token)
            .and_then(|tenant| self.upstream(&tenant.app_id))
            .or_else(|| self.default_upstream.clone())
    }

    /// Lets each client identity select the tenant of that app id (identities of app ids
    /// that have no tenant select nothing).
    pub fn with_identities(
        mut self,
        identities: impl IntoIterator<Item = (ClientIdentity, String)>,
    ) -> Self {
        let by_app_id: HashMap<&str, &Arc<Tenant<S>>> = self
            .by_token
            .values()
            .map(|t| (t.app_id.as_str(), t))
            .collect();
        let by_identity = identities
            .into_iter()
            .filter_map(|(identity, app_id)| {
                Some((identity, (*by_app_id.get(app_id.as_str())?).clone()))
            })
            .collect();
        self.by_identity = by_identity;
        self
    }

    /// The tenant a request presenting `token` (or none) is for; `None` means daprd's 401.
    pub fn select(&self, token: Option<&[u8]>) -> Option<Arc<Tenant<S>>> {
        self.select_for(&[], token)
    }

    /// The tenant a request from a client whose certificate presents `names` (none without
    /// one) and that sends `token` (or none) is for; `None` means daprd's 401. A certificate
    /// that names one tenant selects it, and a token must then select the same one; one
    /// that names two tenants selects none.
    pub fn select_for(
        &self,
        names: &[ClientIdentity],
        token: Option<&[u8]>,
    ) -> Option<Arc<Tenant<S>>> {
        if let Some(open) = &self.open {
            return Some(open.clone());
        }
        let mut named = names.iter().filter_map(|name| self.by_identity.get(name));
        let by_token = || self.by_token.get(&digest(token?)).cloned();
        let Some(certified) = named.next() else {
            return by_token();
        };
        if named.any(|other| !Arc::ptr_eq(other, certified)) {
            return None;
        }
        match token {
            None => Some(certified.clone()),
            Some(_) => by_token().filter(|t| Arc::ptr_eq(t, certified)),
        }
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

    /// The tenant a request from a client whose certificate presents `names` and that sends
    /// `token` is for, in the tenants in force now ([`Tenants::select_for`]).
    pub fn select_for(
        &self,
        names: &[ClientIdentity],
        token: Option<&[u8]>,
    ) -> Option<Arc<Tenant<S>>> {
        self.current().select_for(names, token)
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
    fn upstreams_belong_to_tenants_and_health_falls_back_to_the_default() {
        let address = |a: &str| Some(crate::upstream::parse_address(a).unwrap());
        let own = Upstream {
            http: address("http://own:3500"),
            grpc: None,
        };
        let default = Upstream {
            http: address("http://default:3500"),
            grpc: address("http://default:50001"),
        };
        let tenants = Tenants::with_tokens([
            ("t-orders".to_string(), tenant("orders")),
            ("t-billing".to_string(), tenant("billing")),
        ])
        .with_upstreams(
            [
                ("orders".to_string(), own.clone()),
                ("billing".to_string(), Upstream::default()),
            ],
            Some(default.clone()),
        );
        assert_eq!(tenants.upstream("orders").as_deref(), Some(&own));
        assert_eq!(tenants.upstream("billing"), None);
        let health = |token: Option<&[u8]>| tenants.health_upstream(token).map(|u| (*u).clone());
        assert_eq!(health(Some(b"t-orders")), Some(own));
        assert_eq!(health(Some(b"t-billing")), Some(default.clone()));
        assert_eq!(health(None), Some(default));
        let none = Tenants::open(tenant("app")).with_upstreams([], Some(Upstream::default()));
        assert_eq!(none.health_upstream(None), None);
    }

    #[test]
    fn a_certificate_selects_its_tenant_and_a_token_beside_it_must_agree() {
        let uri = |u: &str| ClientIdentity::Uri(u.into());
        let dns = |d: &str| ClientIdentity::Dns(d.into());
        let tenants = Tenants::with_tokens([
            ("t-orders".to_string(), tenant("orders")),
            ("t-billing".to_string(), tenant("billing")),
        ])
        .with_identities([
            (uri("spiffe://x/orders"), "orders".to_string()),
            (dns("billing.x"), "billing".to_string()),
            (dns("gone.x"), "gone".to_string()),
        ]);
        let app = |names: &[ClientIdentity], token: Option<&[u8]>| {
            tenants.select_for(names, token).map(|t| t.app_id.clone())
        };
        let orders = [uri("spiffe://x/orders"), dns("unrelated.x")];
        assert_eq!(app(&orders, None), Some("orders".into()));
        assert_eq!(app(&orders, Some(b"t-orders")), Some("orders".into()));
        assert_eq!(
            app(&orders, Some(b"t-billing")),
            None,
            "tokens of another tenant"
        );
        assert_eq!(app(&orders, Some(b"wrong")), None);
        assert_eq!(app(&[dns("billing.x")], None), Some("billing".into()));
        assert_eq!(
            app(&[dns("unrelated.x")], Some(b"t-billing")),
            Some("billing".into()),
            "a certificate of no tenant leaves the choice to the token"
        );
        assert_eq!(app(&[dns("unrelated.x")], None), None);
        assert_eq!(app(&[dns("gone.x")], None), None);
        assert_eq!(
            app(&[uri("spiffe://x/orders"), dns("billing.x")], None),
            None,
            "a certificate of two tenants selects none"
        );
        assert_eq!(app(&[], Some(b"t-orders")), Some("orders".into()));
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
