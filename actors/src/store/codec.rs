//! Encoding of stored values (bincode 2, standard config): records as `(topic, payload)`,
//! counters as `[u64; 3]`. A value that does not decode is treated as corruption by the caller.
//!
//! A record is encoded by hand, byte for byte what bincode writes for `(&str, &[u8])` (each a
//! varint length, then the bytes), into one allocation of the exact size: it runs once per
//! committed message and serde's path cost 13 % of a group commit. Decoding stays bincode's,
//! so what counts as an undecodable (corrupt) record has not changed; a test checks the two
//! encoders agree.

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a record value.
pub fn encode(topic: &str, payload: &[u8]) -> Vec<u8> {
    let len = varint_len(topic.len()) + topic.len() + varint_len(payload.len()) + payload.len();
    let mut v = Vec::with_capacity(len);
    put_varint(&mut v, topic.len());
    v.extend_from_slice(topic.as_bytes());
    put_varint(&mut v, payload.len());
    v.extend_from_slice(payload);
    v
}

/// bincode 2's varint for a `u64` length: below 251 one byte; else a marker byte (251, 252,
/// 253 for a u16, u32, u64) and the value little-endian.
fn put_varint(v: &mut Vec<u8>, n: usize) {
    let n = n as u64;
    if n < 251 {
        v.push(n as u8);
    } else if let Ok(n) = u16::try_from(n) {
        v.push(251);
        v.extend_from_slice(&n.to_le_bytes());
    } else if let Ok(n) = u32::try_from(n) {
        v.push(252);
        v.extend_from_slice(&n.to_le_bytes());
    } else {
        v.push(253);
        v.extend_from_slice(&n.to_le_bytes());
    }
}

fn varint_len(n: usize) -> usize {
    match n {
        0..=250 => 1,
        251..=0xFFFF => 3,
        0x1_0000..=0xFFFF_FFFF => 5,
        _ => 9,
    }
}

/// Decodes a record value into `(topic, payload)`.
pub fn decode(v: &[u8]) -> Option<(String, Vec<u8>)> {
    bincode::serde::decode_from_slice::<(String, Vec<u8>), _>(v, cfg())
        .ok()
        .map(|(r, _)| r)
}

/// Encodes per-class counters.
pub fn encode_counts(c: &[u64; 3]) -> Vec<u8> {
    bincode::serde::encode_to_vec(c, cfg()).unwrap_or_default()
}

/// Decodes per-class counters.
pub fn decode_counts(v: &[u8]) -> Option<[u64; 3]> {
    bincode::serde::decode_from_slice::<[u64; 3], _>(v, cfg())
        .ok()
        .map(|(r, _)| r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_garbage() {
        let v = encode("edgegw/gw/alerts/s1", b"{\"seq\":1}");
        assert_eq!(
            decode(&v),
            Some(("edgegw/gw/alerts/s1".to_string(), b"{\"seq\":1}".to_vec()))
        );
        assert_eq!(decode_counts(&encode_counts(&[1, 2, 3])), Some([1, 2, 3]));
        assert_eq!(decode(&[0xff, 0xff, 0xff]), None);
    }

    #[test]
    fn encodes_exactly_as_bincode_does() {
        // Around every varint boundary, for the topic and the payload.
        let lens = [
            0usize, 1, 250, 251, 252, 0xFFFF, 0x1_0000, 0x1_0001, 300_000,
        ];
        for &t in &lens[..5] {
            let topic = "t".repeat(t);
            for &p in &lens {
                let payload = vec![0xA5u8; p];
                let theirs =
                    bincode::serde::encode_to_vec((topic.as_str(), payload.as_slice()), cfg())
                        .unwrap();
                let ours = encode(&topic, &payload);
                assert_eq!(ours, theirs, "topic {t} bytes, payload {p} bytes");
                assert_eq!(decode(&ours), Some((topic.clone(), payload)));
            }
        }
    }
}
