//! libFuzzer entry point; the logic is `chat_fuzz::rest` so stable tests replay it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chat_fuzz::rest(data));
