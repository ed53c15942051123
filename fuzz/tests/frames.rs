//! Replays `chat_fuzz::frames`'s seeds, regressions and 1500 seeded mutations on stable Rust.

mod common;

#[test]
fn frames_seeds_regressions_and_mutations() {
    common::replay("frames", 1500, chat_fuzz::frames);
}
