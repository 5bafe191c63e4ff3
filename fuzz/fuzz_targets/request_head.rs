//! Arbitrary bytes as the start of a client stream: the head peeks never panic, and what they
//! report stays inside the frame and the configured limit.
#![no_main]

use kafka_edge::proxy::frame::{peek_request, peek_response, SIZE_PREFIX};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(head)) = peek_request(data, MAX) {
        assert!(head.frame_len >= SIZE_PREFIX + 8 && head.frame_len <= SIZE_PREFIX + MAX);
        // A head, once found, is found again with more bytes behind it.
        let mut longer = data.to_vec();
        longer.extend_from_slice(&[0u8; 64]);
        assert_eq!(peek_request(&longer, MAX), Ok(Some(head)));
    }
    if let Ok(Some(head)) = peek_response(data, MAX) {
        assert!(head.frame_len >= SIZE_PREFIX + 4 && head.frame_len <= SIZE_PREFIX + MAX);
    }
});
