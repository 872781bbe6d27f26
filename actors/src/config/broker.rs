//! `[broker]`: the embedded rumqttd broker: its plaintext listener, an optional TLS listener
//! that requires client certificates, and username/password logins for sensors.
//!
//! Design constraints: the default stays one plaintext listener on loopback (sensors on the
//! same device, nothing to set up). A TLS listener always verifies client certificates
//! against `ca_file` (rumqttd's client verification takes the first certificate of that
//! file); with `password_file` every client of either listener must log in, the gateway's own
//! ingest included. Files are read and checked here, so `check-config` names a bad one.

use super::tls::{read_certs, set};
use super::{check, ConfigError};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::PrivateKeyDer;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;

/// `[broker]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BrokerConfig {
    /// Run the embedded broker in this process.
    pub embedded: bool,
    /// Where the plaintext listener binds (the gateway's own ingest connects here).
    pub bind: SocketAddr,
    /// Where the TLS listener binds; absent: no TLS listener.
    pub tls_bind: Option<SocketAddr>,
    /// The TLS listener's certificate chain (PEM).
    pub cert_file: PathBuf,
    /// Its private key (PEM).
    pub key_file: PathBuf,
    /// The CA (PEM) that must have signed every client certificate of the TLS listener.
    pub ca_file: PathBuf,
    /// Logins: one `username:password` per line (`#` comments); every client of either
    /// listener must log in with one of them. Empty: no logins.
    pub password_file: PathBuf,
    /// Largest MQTT payload the embedded broker accepts, bytes.
    pub max_payload_bytes: usize,
    /// Most concurrent client connections of the embedded broker.
    pub max_connections: usize,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        Self {
            embedded: true,
            bind: SocketAddr::from(([127, 0, 0, 1], 1883)),
            tls_bind: None,
            cert_file: PathBuf::new(),
            key_file: PathBuf::new(),
            ca_file: PathBuf::new(),
            password_file: PathBuf::new(),
            max_payload_bytes: 1 << 20,
            max_connections: 10_000,
        }
    }
}

impl BrokerConfig {
    /// Checks the section and reads its files (certificates, key, logins).
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !self.embedded {
            return Ok(());
        }
        let files = [
            ("broker.cert_file", &self.cert_file),
            ("broker.key_file", &self.key_file),
            ("broker.ca_file", &self.ca_file),
        ];
        match self.tls_bind {
            Some(tls) => {
                check(
                    tls != self.bind,
                    "broker.tls_bind",
                    "must differ from broker.bind",
                )?;
                for (key, p) in files {
                    check(set(p), key, "is needed with broker.tls_bind")?;
                }
                read_certs(&self.cert_file).map_err(|r| ConfigError::new("broker.cert_file", r))?;
                read_certs(&self.ca_file).map_err(|r| ConfigError::new("broker.ca_file", r))?;
                PrivateKeyDer::from_pem_file(&self.key_file).map_err(|e| {
                    ConfigError::new(
                        "broker.key_file",
                        format!("{}: no private key ({e:?})", self.key_file.display()),
                    )
                })?;
            }
            None => {
                for (key, p) in files {
                    check(!set(p), key, "is set, but broker.tls_bind is not")?;
                }
            }
        }
        self.logins().map(|_| ())
    }

    /// Whether clients must log in.
    pub fn requires_login(&self) -> bool {
        set(&self.password_file)
    }

    /// The logins of `password_file` (`None` when no file is set).
    pub fn logins(&self) -> Result<Option<HashMap<String, String>>, ConfigError> {
        if !self.requires_login() {
            return Ok(None);
        }
        let key = "broker.password_file";
        let path = self.password_file.display();
        let text = std::fs::read_to_string(&self.password_file)
            .map_err(|e| ConfigError::new(key, format!("cannot read {path}: {e}")))?;
        let mut logins = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim_end_matches('\r');
            if line.trim().is_empty() || line.trim_start().starts_with('#') {
                continue;
            }
            let Some((user, password)) = line.split_once(':') else {
                return Err(ConfigError::new(
                    key,
                    format!("{path}:{}: expected username:password", i + 1),
                ));
            };
            check(
                !user.is_empty() && !password.is_empty(),
                key,
                &format!("{path}:{}: empty username or password", i + 1),
            )?;
            check(
                logins
                    .insert(user.to_string(), password.to_string())
                    .is_none(),
                key,
                &format!("{path}:{}: username {user:?} appears twice", i + 1),
            )?;
        }
        check(!logins.is_empty(), key, &format!("{path} holds no login"))?;
        Ok(Some(logins))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;

    #[test]
    fn logins_are_read_line_by_line_and_bad_lines_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("passwd");
        let cfg = BrokerConfig {
            password_file: file.clone(),
            ..BrokerConfig::default()
        };
        std::fs::write(&file, "# sensors\nsensor-1:s3cret:with:colons\n\ngw:pw\r\n").unwrap();
        let logins = cfg.logins().unwrap().unwrap();
        assert_eq!(logins["sensor-1"], "s3cret:with:colons");
        assert_eq!(logins["gw"], "pw");
        for (text, why) in [
            ("nocolon\n", ":1: expected"),
            ("a:b\na:c\n", ":2: username \"a\" appears twice"),
            (":pw\n", ":1: empty"),
            ("# only a comment\n", "holds no login"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = cfg.validate().unwrap_err();
            assert_eq!(e.key, "broker.password_file");
            assert!(e.reason.contains(why), "{text:?}: {e}");
        }
        let gone = BrokerConfig {
            password_file: dir.path().join("missing"),
            ..BrokerConfig::default()
        };
        assert!(gone.validate().unwrap_err().reason.contains("cannot read"));
        assert!(BrokerConfig::default().logins().unwrap().is_none());
    }

    #[test]
    fn a_tls_listener_needs_its_three_files_and_tls_files_need_the_listener() {
        let dir = tempfile::tempdir().unwrap();
        let tls = BrokerConfig {
            tls_bind: Some("127.0.0.1:8883".parse().unwrap()),
            ..BrokerConfig::default()
        };
        assert_eq!(tls.validate().unwrap_err().key, "broker.cert_file");
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not pem").unwrap();
        let e = BrokerConfig {
            cert_file: junk.clone(),
            key_file: junk.clone(),
            ca_file: junk.clone(),
            ..tls.clone()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.key, "broker.cert_file");
        assert!(e.reason.contains("junk.pem"), "{e}");
        let stray = BrokerConfig {
            ca_file: junk,
            ..BrokerConfig::default()
        };
        assert!(stray
            .validate()
            .unwrap_err()
            .reason
            .contains("tls_bind is not"));
        let same = BrokerConfig {
            tls_bind: Some(BrokerConfig::default().bind),
            ..BrokerConfig::default()
        };
        assert_eq!(same.validate().unwrap_err().key, "broker.tls_bind");
    }
}
