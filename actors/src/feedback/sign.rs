//! The signing side of authenticated feedback, for the operator's tools: a key file, and
//! threshold commands signed as [`super::validate`] checks them.
//!
//! Design constraints: the key file holds the 32-byte ed25519 seed as 64 hex digits and a
//! newline, written with mode 0600 and never over an existing file; the matching public key
//! (64 hex digits) goes into `feedback.public_key`. The seed comes from the thread's CSPRNG
//! (`rand`, seeded from the operating system).

use super::validate::canonical_threshold_bytes;
use crate::config::hex;
use ed25519_dalek::{Signer, SigningKey};
use rand::Rng;
use std::io::Write;
use std::path::Path;

/// Why a key could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// The file could not be created, written or read.
    #[error("{path}: {source}")]
    Io {
        /// The key file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file does not hold 64 hex digits.
    #[error("{0}: not an ed25519 key file (64 hex digits expected)")]
    Format(String),
}

fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a new signing key to `path` (mode 0600, refusing to overwrite) and returns its
/// public key, hex.
pub fn keygen(path: &Path) -> Result<String, KeyError> {
    let io = |source| KeyError::Io {
        path: path.display().to_string(),
        source,
    };
    let seed: [u8; 32] = rand::rng().random();
    let key = SigningKey::from_bytes(&seed);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io)?;
    writeln!(f, "{}", hex_of(&seed)).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(hex_of(key.verifying_key().as_bytes()))
}

/// Reads the signing key in `path`.
pub fn read_key(path: &Path) -> Result<SigningKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let seed: [u8; 32] = hex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| KeyError::Format(path.display().to_string()))?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A signed `threshold` command, ready to publish on `feedback/threshold`.
pub fn threshold_command(
    key: &SigningKey,
    id: &str,
    sensor: &str,
    threshold: f64,
    ts: i64,
) -> serde_json::Value {
    let sig = key.sign(&canonical_threshold_bytes(id, sensor, threshold, ts));
    serde_json::json!({
        "id": id,
        "sensor": sensor,
        "threshold": threshold,
        "ts": ts,
        "signature": hex_of(&sig.to_bytes()),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;
    use crate::config::public_key;
    use crate::feedback::validate::{parse, Checks, Feedback};
    use crate::feedback::Kind;

    #[test]
    fn a_generated_key_signs_commands_the_gateway_accepts() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let public = keygen(&path).unwrap();
        assert!(keygen(&path).is_err(), "never overwrites a key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let key = read_key(&path).unwrap();
        let vk = public_key(&public).unwrap();
        let now = 1_700_000_000_000;
        let cmd = threshold_command(&key, "op-1", "*", 0.25, now);
        let known = |_: &str| true;
        let checks = Checks {
            max_span_ms: 1,
            max_threshold: 10.0,
            key: Some(&vk),
            now_ms: now,
            max_age_ms: 300_000,
            known: &known,
        };
        let payload = cmd.to_string();
        assert_eq!(
            parse(Kind::Threshold, payload.as_bytes(), &checks),
            Ok(Feedback::Threshold {
                sensor: None,
                threshold: 0.25
            })
        );
        std::fs::write(dir.path().join("bad"), "xyz").unwrap();
        assert!(matches!(
            read_key(&dir.path().join("bad")),
            Err(KeyError::Format(_))
        ));
    }
}
