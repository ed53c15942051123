//! Replays `chat_fuzz::markdown`'s seeds, regressions and 20000 seeded mutations on stable Rust.

mod common;

#[test]
fn markdown_seeds_regressions_and_mutations() {
    common::replay("markdown", 20000, chat_fuzz::markdown);
}
