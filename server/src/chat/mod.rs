//! Chat operations, shared by the REST handlers and the socket: permission checks, validation,
//! and the store calls that follow. Neither transport checks rules of its own.

mod accounts;
mod messages;
mod rooms;

pub use accounts::*;
pub use messages::*;
pub use rooms::*;
