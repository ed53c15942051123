//! libFuzzer entry point; the logic is `chat_fuzz::decode` so stable tests replay it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chat_fuzz::decode(data));
