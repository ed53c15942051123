//! libFuzzer entry point; the logic is `chat_fuzz::markdown` so stable tests replay it too.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| chat_fuzz::markdown(data));
