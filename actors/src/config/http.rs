//! `[http]`: where the operations endpoint listens, and the bearer token that guards
//! `/status` and `/metrics`.
//!
//! Design constraints: the token lives in a file (`token_file`), never in the config itself,
//! so the config can be shown and shared; it is read when the endpoint starts and never
//! logged. Bound beyond loopback, the endpoint must have a token: `/status` names the
//! gateway's sensors, broker and model, and `/metrics` its traffic. `/healthz` and `/readyz`
//! stay open for probes.

use super::{check, ConfigError};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Where `/healthz`, `/readyz`, `/status` and `/metrics` are served.
    pub bind: SocketAddr,
    /// A file holding the bearer token `/status` and `/metrics` require (surrounding
    /// whitespace ignored); empty: no token (allowed only on a loopback `bind`).
    pub token_file: PathBuf,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 9464)),
            token_file: PathBuf::new(),
        }
    }
}

/// Shortest token accepted: 16 bytes, e.g. `openssl rand -hex 16` (32 characters).
pub const MIN_TOKEN_LEN: usize = 16;

impl HttpConfig {
    /// Checks the section: a token is required beyond loopback, and its file must hold one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        check(
            self.bind.ip().is_loopback() || !self.token_file.as_os_str().is_empty(),
            "http.token_file",
            &format!(
                "required when http.bind ({}) is not a loopback address: /status and /metrics \
                 would be open to the network",
                self.bind
            ),
        )?;
        self.token().map(|_| ())
    }

    /// The token from `token_file` (`None` when no file is set).
    pub fn token(&self) -> Result<Option<String>, ConfigError> {
        if self.token_file.as_os_str().is_empty() {
            return Ok(None);
        }
        read_token(&self.token_file).map(Some)
    }
}

fn read_token(path: &Path) -> Result<String, ConfigError> {
    let key = "http.token_file";
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::new(key, format!("cannot read {}: {e}", path.display())))?;
    let token = text.trim();
    check(
        token.len() >= MIN_TOKEN_LEN,
        key,
        &format!(
            "{} holds a token shorter than {MIN_TOKEN_LEN} characters",
            path.display()
        ),
    )?;
    check(
        token.bytes().all(|b| b.is_ascii_graphic()),
        key,
        &format!(
            "{} holds a token with spaces or control characters",
            path.display()
        ),
    )?;
    Ok(token.to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;

    fn with(bind: &str, token_file: PathBuf) -> HttpConfig {
        HttpConfig {
            bind: bind.parse().unwrap(),
            token_file,
        }
    }

    #[test]
    fn a_token_is_required_beyond_loopback_and_must_be_readable() {
        let dir = tempfile::tempdir().unwrap();
        assert!(with("127.0.0.1:0", PathBuf::new()).validate().is_ok());
        assert!(with("[::1]:0", PathBuf::new()).validate().is_ok());
        let e = with("0.0.0.0:9464", PathBuf::new()).validate().unwrap_err();
        assert_eq!(e.key, "http.token_file");
        assert!(e.reason.contains("not a loopback"), "{e}");

        let missing = dir.path().join("nope");
        let e = with("0.0.0.0:9464", missing).validate().unwrap_err();
        assert_eq!(e.key, "http.token_file");
        assert!(e.reason.contains("cannot read"), "{e}");

        let short = dir.path().join("short");
        std::fs::write(&short, "abc\n").unwrap();
        let e = with("127.0.0.1:0", short).validate().unwrap_err();
        assert!(e.reason.contains("shorter"), "{e}");

        let good = dir.path().join("token");
        std::fs::write(&good, "  0123456789abcdef0123\n").unwrap();
        let c = with("0.0.0.0:9464", good);
        assert!(c.validate().is_ok());
        assert_eq!(c.token().unwrap().as_deref(), Some("0123456789abcdef0123"));
    }
}
