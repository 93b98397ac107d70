//! Certificates for TLS tests, made by `openssl`: an [`Authority`] in a directory, and the
//! certificates it issues ([`Issued`]: server or client, with subject alternative names,
//! valid for two days or long expired), as PEM files beside it.
//!
//! When `openssl` is missing it is installed from Debian's packages if this user can;
//! failing that, [`openssl_available`] fails the test under `CI=true` and otherwise says so
//! on stderr and returns `false`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Whether `openssl` runs (installing it if it can); see the module docs.
pub fn openssl_available() -> bool {
    crate::require_tool(&["openssl", "version"], "openssl", "the TLS tests")
}

/// A certificate authority: `NAME.crt` and `NAME.key` in its directory.
pub struct Authority {
    dir: PathBuf,
    name: String,
}

/// A certificate and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
}

/// How long an issued certificate is valid.
#[derive(Debug, Clone, Copy)]
pub enum Validity {
    /// From now for this many days.
    Days(u32),
    /// For one day, years ago.
    Expired,
}

/// A P-256 key, new and unencrypted, for `openssl req`.
const NEW_KEY: &str = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";

impl Authority {
    /// A new self-signed authority named `name` (also its common name) in `dir`, valid for
    /// two days. Needs [`openssl_available`].
    pub fn create(dir: &Path, name: &str) -> Authority {
        let authority = Authority {
            dir: dir.to_path_buf(),
            name: name.to_string(),
        };
        authority.openssl(&format!(
            "req -x509 -days 2 -subj /CN={name} {NEW_KEY} -keyout {name}.key -out {name}.crt \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign"
        ));
        std::fs::create_dir_all(dir.join(format!("{name}.issued"))).expect("a directory");
        std::fs::write(dir.join(format!("{name}.index")), "").expect("an index file");
        let config = format!(
            "[ca]\ndefault_ca = this\n[this]\ndatabase = {name}.index\nnew_certs_dir = \
             {name}.issued\nserial = {name}.serial\ndefault_md = sha256\npolicy = any\n\
             unique_subject = no\n[any]\ncommonName = supplied\n"
        );
        std::fs::write(dir.join(format!("{name}.cnf")), config).expect("a configuration");
        authority
    }

    /// The authority's certificate (for `SSL_CERT_FILE`, `--api-tls-client-ca`, `--cacert`).
    pub fn cert(&self) -> PathBuf {
        self.dir.join(format!("{}.crt", self.name))
    }

    /// Issues `NAME.crt` and `NAME.key` (`NAME` other than the authority's), valid for two days, with the subject alternative
    /// names `names` (`IP:127.0.0.1`, `DNS:orders.example`, `URI:spiffe://example/orders`)
    /// and the extended key usages `usage` (`serverAuth`, `clientAuth`, or both with a
    /// comma).
    pub fn issue(&self, name: &str, names: &[&str], usage: &str) -> Issued {
        self.issue_with(name, names, usage, Validity::Days(2))
    }

    /// Issues a certificate as [`Authority::issue`] does, valid as `validity` says.
    pub fn issue_with(
        &self,
        name: &str,
        names: &[&str],
        usage: &str,
        validity: Validity,
    ) -> Issued {
        let mut extensions = format!("basicConstraints=CA:FALSE\nextendedKeyUsage={usage}\n");
        if !names.is_empty() {
            extensions.push_str(&format!("subjectAltName={}\n", names.join(",")));
        }
        std::fs::write(self.dir.join(format!("{name}.ext")), extensions)
            .expect("write an extensions file");
        self.openssl(&format!(
            "req -new -subj /CN={name} {NEW_KEY} -keyout {name}.key -out {name}.csr"
        ));
        let dates = match validity {
            Validity::Days(days) => format!("-days {days}"),
            Validity::Expired => "-startdate 20200101000000Z -enddate 20200102000000Z".into(),
        };
        let ca = &self.name;
        self.openssl(&format!(
            "ca -batch -notext -rand_serial -config {ca}.cnf -cert {ca}.crt -keyfile {ca}.key \
             -in {name}.csr -out {name}.crt -extfile {name}.ext {dates}"
        ));
        Issued {
            cert: self.dir.join(format!("{name}.crt")),
            key: self.dir.join(format!("{name}.key")),
        }
    }

    /// Runs `openssl` in the directory; `command` is words without spaces inside them.
    fn openssl(&self, command: &str) {
        let mut openssl = Command::new("openssl");
        openssl
            .args(command.split_whitespace())
            .current_dir(&self.dir);
        crate::installs::run(&mut openssl).unwrap_or_else(|e| panic!("{e}"));
    }
}
