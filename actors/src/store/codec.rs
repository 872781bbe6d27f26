//! Encoding of stored values (bincode 2, standard config): records as `(topic, payload)`,
//! counters as `[u64; 3]`. A value that does not decode is treated as corruption by the caller.

fn cfg() -> bincode::config::Configuration {
    bincode::config::standard()
}

/// Encodes a record value.
pub fn encode(topic: &str, payload: &[u8]) -> Vec<u8> {
    // Encoding into a Vec cannot fail for these types.
    bincode::serde::encode_to_vec((topic, payload), cfg()).unwrap_or_default()
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
}
