//! The leak oracle of `frames`: a secret alice sent herself is no leak (regression: the fuzzer
//! learned the private room's name through comparison tracing and "found" it in its own
//! history, `regressions/frames/secret-learned-by-cmp-tracing`).

#[test]
fn a_secret_the_user_sent_herself_is_not_a_leak() {
    let name = chat_fuzz::private_room_name();
    let send = format!("\x00{{\"type\":\"send\",\"room\":1,\"id\":\"{name}\",\"body\":\"hi\"}}");
    chat_fuzz::frames(send.as_bytes());
    chat_fuzz::frames(b"\x00{\"type\":\"history\",\"room\":1,\"ref\":\"h\"}");
}
