//! The store's value decoders on arbitrary bytes, as a corrupt or foreign store would hand
//! them over: records, eviction counts, raw windows. Nothing may panic, and whatever decodes
//! re-encodes to the same bytes' meaning (decode ∘ encode is the identity).
#![no_main]

use edgegw_actors::store::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Some((topic, payload)) = codec::decode(data) {
        let again = codec::encode(&topic, &payload).expect("a record re-encodes");
        assert_eq!(codec::decode(&again), Some((topic, payload)));
    }
    if let Some(c) = codec::decode_counts(data) {
        let again = codec::encode_counts(&c).expect("counts re-encode");
        assert_eq!(codec::decode_counts(&again), Some(c));
    }
    if let Some(s) = codec::decode_samples(data) {
        let again = codec::encode_samples(&s).expect("a window re-encodes");
        let back = codec::decode_samples(&again).expect("and decodes");
        assert_eq!(back.len(), s.len());
        for ((t1, v1), (t2, v2)) in back.iter().zip(&s) {
            assert_eq!(t1, t2);
            assert_eq!(v1.to_bits(), v2.to_bits());
        }
    }
});
