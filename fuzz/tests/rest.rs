//! Replays `chat_fuzz::rest`'s seeds, regressions and 1500 seeded mutations on stable Rust.

mod common;

#[test]
fn rest_seeds_regressions_and_mutations() {
    common::replay("rest", 1500, chat_fuzz::rest);
}
