//! Replays `chat_fuzz::decode`'s seeds, regressions and 20000 seeded mutations on stable Rust.

mod common;

#[test]
fn decode_seeds_regressions_and_mutations() {
    common::replay("decode", 20000, chat_fuzz::decode);
}
