//! How to reach and log in to one Redis server (or Sentinel): its address, over TLS when
//! the settings ask for it, and the `AUTH` credentials.

use super::RedisSettings;
use super::settings::{Redacted, TlsSettings};
use redis::{
    ClientTlsConfig, ConnectionAddr, ConnectionInfo, IntoConnectionInfo, RedisConnectionInfo,
    TlsCertificates,
};

/// The client certificate of `tls`, in the form the `redis` crate takes it.
pub(super) fn client_certificates(tls: &TlsSettings) -> Option<TlsCertificates> {
    tls.client.as_ref().map(|client| TlsCertificates {
        client_tls: Some(ClientTlsConfig {
            client_cert: client.cert.as_bytes().to_vec(),
            client_key: client.key.0.as_bytes().to_vec(),
        }),
        root_cert: None,
    })
}

/// The address of the server (or Sentinel) at `host:port`, over TLS when `tls` is set.
pub(super) fn server_address(tls: Option<&TlsSettings>, host: &str, port: u16) -> ConnectionAddr {
    match tls {
        Some(tls) => ConnectionAddr::TcpTls {
            host: host.to_string(),
            port,
            insecure: !tls.verify,
            tls_params: None,
        },
        None => ConnectionAddr::Tcp(host.to_string(), port),
    }
}

/// `AUTH` credentials.
pub(super) fn credentials(
    username: Option<&str>,
    password: Option<&Redacted>,
) -> RedisConnectionInfo {
    let mut redis = RedisConnectionInfo::default();
    if let Some(username) = username {
        redis = redis.set_username(username);
    }
    if let Some(password) = password {
        redis = redis.set_password(&password.0);
    }
    redis
}

/// How to reach and log in to the data server at `host:port` (not a Sentinel).
pub(super) fn connection_info(
    settings: &RedisSettings,
    host: &str,
    port: u16,
) -> redis::RedisResult<ConnectionInfo> {
    let redis = credentials(settings.username.as_deref(), settings.password.as_ref());
    Ok(server_address(settings.tls.as_ref(), host, port)
        .into_connection_info()?
        .set_redis_settings(redis.set_db(settings.db)))
}

/// A client for `info` that presents the client certificate of `tls`, if there is one.
pub(super) fn client(
    info: ConnectionInfo,
    tls: Option<&TlsSettings>,
) -> redis::RedisResult<redis::Client> {
    match tls.and_then(client_certificates) {
        Some(certificates) => redis::Client::build_with_tls(info, certificates),
        None => redis::Client::open(info),
    }
}
