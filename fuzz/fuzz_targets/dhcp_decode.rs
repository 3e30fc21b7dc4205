//! `cargo +nightly fuzz run dhcp_decode`: decoding never panics, and whatever
//! decodes re-encodes to something that decodes to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use neutrino_dhcp::Message;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = Message::decode(data) {
        let mut buf = Vec::new();
        msg.encode(&mut buf);
        let again = Message::decode(&buf).expect("re-encoded message must decode");
        assert_eq!(again, msg);
    }
});
