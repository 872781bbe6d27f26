//! TLS and credentials of the gateway's MQTT links (`[ingest]` and `[uplink]` share the keys),
//! resolved once at start into what a client needs: a rustls client config and a login.
//!
//! Design constraints: every file is read here, at load time, so `check-config` and `run`
//! refuse a missing, unreadable or unparsable one naming its key and path, and a running
//! gateway never rereads them. The password lives only in [`Login`], whose `Debug` hides it;
//! the config keeps its file's path, so the config can be shown. TLS is decided by the URL's
//! scheme alone (`mqtts://`): TLS keys on a plaintext URL are refused rather than silently
//! unused. The ring provider is named explicitly (rustls has no process default here).

use super::url::{parse_url, BrokerUrl};
use super::ConfigError;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The TLS and credential keys of one link section, borrowed from its config.
#[derive(Debug, Clone, Copy)]
pub struct ClientKeys<'a> {
    /// `ingest` or `uplink`, for messages.
    pub section: &'static str,
    /// `url`.
    pub url: &'a str,
    /// `ca_file`: PEM bundle the broker's certificate must chain to; empty: the system's roots.
    pub ca_file: &'a Path,
    /// `cert_file`: the client certificate chain (PEM) for mutual TLS.
    pub cert_file: &'a Path,
    /// `key_file`: its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: &'a Path,
    /// `username`.
    pub username: &'a str,
    /// `password_file`: the password, read once.
    pub password_file: &'a Path,
    /// `alpn`: protocols offered in the TLS handshake (AWS IoT Core on 443: `x-amzn-mqtt-ca`).
    pub alpn: &'a [String],
}

/// A link ready to dial: where, with which TLS config, as whom.
#[derive(Debug, Clone)]
pub struct ClientLink {
    /// `ingest` or `uplink`.
    pub section: &'static str,
    /// The broker.
    pub url: BrokerUrl,
    /// Present for `mqtts://`.
    pub tls: Option<ClientTls>,
    /// Present when `username` is set.
    pub login: Option<Login>,
}

/// The TLS half of a [`ClientLink`].
#[derive(Clone)]
pub struct ClientTls {
    /// The rustls client config (roots, client certificate, ALPN).
    pub config: Arc<rustls::ClientConfig>,
    /// Where the trusted roots come from, for messages: the `ca_file` path or the system.
    pub roots: String,
    /// The client certificate, when mutual TLS is configured.
    pub client_cert: Option<ClientCert>,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("roots", &self.roots)
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

/// The client certificate of a mutual-TLS link, for messages and expiry warnings.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// `cert_file`.
    pub path: PathBuf,
    /// Its end of validity, seconds since the epoch (when it parses as X.509).
    pub not_after: Option<i64>,
}

/// A username and the password read from `password_file`.
#[derive(Clone)]
pub struct Login {
    /// The username.
    pub username: String,
    password: String,
}

impl Login {
    /// The password, for the MQTT CONNECT packet only.
    pub fn password(&self) -> &str {
        &self.password
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A client certificate this close to its end is worth a warning at start.
pub const EXPIRY_WARNING_S: i64 = 14 * 86_400;

impl ClientLink {
    /// Logs a warning when the client certificate has expired or expires within
    /// [`EXPIRY_WARNING_S`] of `now_s`; the broker will refuse it, and only a new one helps.
    pub fn warn_if_expiring(&self, now_s: i64) {
        let Some(cert) = self.tls.as_ref().and_then(|t| t.client_cert.as_ref()) else {
            return;
        };
        let Some(end) = cert.not_after else { return };
        if end - now_s < EXPIRY_WARNING_S {
            let on = chrono::DateTime::from_timestamp(end, 0).map(|t| t.to_rfc3339());
            tracing::warn!(
                message = "Client certificate expired or about to expire; the broker will refuse it.",
                link = self.section,
                cert_file = %cert.path.display(),
                not_after = on.as_deref().unwrap_or("?"),
            );
        }
    }
}

/// Whether a path key is set (empty means unset).
pub(super) fn set(p: &Path) -> bool {
    !p.as_os_str().is_empty()
}

impl ClientKeys<'_> {
    fn err(&self, key: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::new(format!("{}.{key}", self.section), reason)
    }

    /// Reads every file and builds the link; the first problem names its key.
    pub fn load(&self) -> Result<ClientLink, ConfigError> {
        let url = parse_url(self.url).map_err(|r| self.err("url", r))?;
        let tls = if url.tls {
            Some(self.tls(&url)?)
        } else {
            for (key, p) in [
                ("ca_file", self.ca_file),
                ("cert_file", self.cert_file),
                ("key_file", self.key_file),
            ] {
                if set(p) {
                    return Err(self.err(
                        key,
                        format!(
                            "is set, but {}.url ({}) is not TLS: use mqtts://",
                            self.section, self.url
                        ),
                    ));
                }
            }
            if !self.alpn.is_empty() {
                return Err(self.err("alpn", "needs a TLS url (mqtts://)"));
            }
            None
        };
        Ok(ClientLink {
            section: self.section,
            url,
            tls,
            login: self.login()?,
        })
    }

    fn login(&self) -> Result<Option<Login>, ConfigError> {
        if self.username.is_empty() {
            if set(self.password_file) {
                return Err(self.err("username", "is needed when password_file is set"));
            }
            return Ok(None);
        }
        let password = if set(self.password_file) {
            let text = std::fs::read_to_string(self.password_file).map_err(|e| {
                self.err(
                    "password_file",
                    format!("cannot read {}: {e}", self.password_file.display()),
                )
            })?;
            // One line; its line break is not part of the password.
            text.trim_end_matches(['\r', '\n']).to_string()
        } else {
            String::new()
        };
        Ok(Some(Login {
            username: self.username.to_string(),
            password,
        }))
    }

    fn tls(&self, url: &BrokerUrl) -> Result<ClientTls, ConfigError> {
        rustls::pki_types::ServerName::try_from(url.host.as_str()).map_err(|_| {
            self.err(
                "url",
                format!("{:?} is not a valid TLS host name", url.host),
            )
        })?;
        let mut roots = rustls::RootCertStore::empty();
        let roots_from = if set(self.ca_file) {
            let certs = read_certs(self.ca_file).map_err(|r| self.err("ca_file", r))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(self.err(
                    "ca_file",
                    format!("{} holds no usable CA certificate", self.ca_file.display()),
                ));
            }
            self.ca_file.display().to_string()
        } else {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(self.err(
                    "ca_file",
                    "is empty and this system has no root certificates (install \
                     ca-certificates, or name the broker's CA bundle)",
                ));
            }
            "the system's root certificates".to_string()
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| self.err("url", format!("TLS setup: {e}")))?
            .with_root_certificates(roots);
        let (mut config, client_cert) = match (set(self.cert_file), set(self.key_file)) {
            (false, false) => (builder.with_no_client_auth(), None),
            (true, false) => return Err(self.err("key_file", "is needed with cert_file")),
            (false, true) => return Err(self.err("cert_file", "is needed with key_file")),
            (true, true) => {
                let chain = read_certs(self.cert_file).map_err(|r| self.err("cert_file", r))?;
                let not_after = chain.first().and_then(|c| not_after(c));
                let key = PrivateKeyDer::from_pem_file(self.key_file).map_err(|e| {
                    self.err(
                        "key_file",
                        format!(
                            "{}: no private key: {}",
                            self.key_file.display(),
                            pem_error(&e)
                        ),
                    )
                })?;
                let config = builder.with_client_auth_cert(chain, key).map_err(|e| {
                    self.err(
                        "key_file",
                        format!(
                            "{} does not fit {}: {e}",
                            self.key_file.display(),
                            self.cert_file.display()
                        ),
                    )
                })?;
                let cert = ClientCert {
                    path: self.cert_file.to_path_buf(),
                    not_after,
                };
                (config, Some(cert))
            }
        };
        config.alpn_protocols = self.alpn.iter().map(|p| p.as_bytes().to_vec()).collect();
        Ok(ClientTls {
            config: Arc::new(config),
            roots: roots_from,
            client_cert,
        })
    }
}

/// Every certificate of the PEM file at `path` (at least one).
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    std::fs::metadata(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {}", path.display(), pem_error(&e)))?;
    if certs.is_empty() {
        return Err(format!("{} holds no PEM certificate", path.display()));
    }
    Ok(certs)
}

/// A PEM error in words: an I/O error as such, anything else as not PEM.
fn pem_error(e: &rustls::pki_types::pem::Error) -> String {
    match e {
        rustls::pki_types::pem::Error::Io(io) => format!("cannot read: {io}"),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of the expected kind".into(),
        other => format!("not valid PEM ({other:?})"),
    }
}

/// The end of validity of `cert`, seconds since the epoch.
pub fn not_after(cert: &CertificateDer<'_>) -> Option<i64> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    Some(parsed.validity().not_after.timestamp())
}

#[cfg(test)]
mod tests;
