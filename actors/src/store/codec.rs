//! Encoding of stored values (bincode 2, standard config, its native `Encode`/`Decode`):
//! records as `(topic, payload)`, counters as `[u64; 3]`, raw windows as `[(ts, value)]`. The
//! one place the store's value format lives. A value that does not decode is treated as
//! corruption by the caller; a value that does not encode is an error, never an empty value
//! on disk.
//!
//! A record is encoded into one allocation sized for it up front (bincode's length varints
//! take at most 9 bytes each), so the commit path never regrows a buffer.

use bincode::error::EncodeError;

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a record value.
pub fn encode(topic: &str, payload: &[u8]) -> Result<Vec<u8>, EncodeError> {
    let mut v = Vec::with_capacity(topic.len() + payload.len() + 18);
    bincode::encode_into_std_write((topic, payload), &mut v, cfg())?;
    Ok(v)
}

/// Decodes a record value into `(topic, payload)`.
pub fn decode(v: &[u8]) -> Option<(String, Vec<u8>)> {
    bincode::decode_from_slice::<(String, Vec<u8>), _>(v, cfg())
        .ok()
        .map(|(r, _)| r)
}

/// Encodes per-class counters.
pub fn encode_counts(c: &[u64; 3]) -> Result<Vec<u8>, EncodeError> {
    bincode::encode_to_vec(c, cfg())
}

/// Decodes per-class counters.
pub fn decode_counts(v: &[u8]) -> Option<[u64; 3]> {
    bincode::decode_from_slice::<[u64; 3], _>(v, cfg())
        .ok()
        .map(|(r, _)| r)
}

/// Encodes a raw window, `(ts, value)` oldest first.
pub fn encode_samples(samples: &[(i64, f64)]) -> Result<Vec<u8>, EncodeError> {
    bincode::encode_to_vec(samples, cfg())
}

/// Decodes a raw window.
pub fn decode_samples(v: &[u8]) -> Option<Vec<(i64, f64)>> {
    bincode::decode_from_slice::<Vec<(i64, f64)>, _>(v, cfg())
        .ok()
        .map(|(s, _)| s)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)] // a failure here should stop the test loudly.
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = encode("edgegw/gw/alerts/s1", b"{\"seq\":1}").unwrap();
        assert_eq!(
            decode(&v),
            Some(("edgegw/gw/alerts/s1".to_string(), b"{\"seq\":1}".to_vec()))
        );
        assert_eq!(
            decode_counts(&encode_counts(&[1, 2, 3]).unwrap()),
            Some([1, 2, 3])
        );
        let w = [(1_700_000_000_000, 21.5), (-1, f64::MIN_POSITIVE)];
        assert_eq!(
            decode_samples(&encode_samples(&w).unwrap()),
            Some(w.to_vec())
        );
        assert_eq!(decode(&[0xff, 0xff, 0xff]), None);
        assert_eq!(decode_samples(&[0xfd]), None);
    }

    /// The format of stores written by earlier versions: each length a varint (below 251 one
    /// byte; else 251, 252 or 253 and a u16, u32 or u64 little-endian), then the bytes. Every
    /// length around a boundary encodes so and decodes back.
    #[test]
    fn the_record_format_is_the_one_on_disk() {
        fn varint(n: usize) -> Vec<u8> {
            match n {
                0..=250 => vec![n as u8],
                251..=0xFFFF => [vec![251], (n as u16).to_le_bytes().to_vec()].concat(),
                _ => [vec![252], (n as u32).to_le_bytes().to_vec()].concat(),
            }
        }
        let lens = [0usize, 1, 250, 251, 252, 0xFFFF, 0x1_0000, 300_000];
        for &t in &lens[..5] {
            let topic = "t".repeat(t);
            for &p in &lens {
                let payload = vec![0xA5u8; p];
                let on_disk = [
                    varint(t),
                    topic.as_bytes().to_vec(),
                    varint(p),
                    payload.clone(),
                ]
                .concat();
                assert_eq!(encode(&topic, &payload).unwrap(), on_disk, "{t}/{p}");
                assert_eq!(decode(&on_disk), Some((topic.clone(), payload)));
            }
        }
    }
}
