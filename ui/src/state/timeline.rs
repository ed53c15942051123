//! A room's loaded history and how much of it stays in memory.

use protocol::ipc::MessageView;

/// How many sent messages the timeline of a room not being read keeps: more than a newest
/// page, so the room shows at once when opened again.
pub const KEEP_AWAY: usize = 100;

/// How many sent messages the room being read keeps while its list follows the newest ones
/// (more than the list draws, [`crate::rows::WINDOW`]): scrolled back through thousands and
/// returned to the bottom, the rest go; they come back from the cache when scrolled to.
pub const KEEP_READING: usize = 200;

/// The list asks for [`Action::Trim`] past this many messages.
pub const TRIM_AT: usize = 2 * KEEP_READING;

// The rows the list draws must stay loaded when it trims.
const _: () = assert!(KEEP_READING > crate::rows::WINDOW);

/// The loaded part of a room's history.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Timeline {
    /// Sent messages ascending by seq, then unsent ones (pending/failed) in send order.
    pub messages: Vec<MessageView>,
    /// Older messages exist before the first one here.
    pub has_more: bool,
    /// A page of older messages is on its way.
    pub loading_older: bool,
    /// The newest page has arrived at least once.
    pub loaded: bool,
    /// Loading the newest page failed (the list offers to try again).
    pub load_error: bool,
}

impl Timeline {
    /// Oldest seq here: the `before` for the next older page.
    pub fn oldest_seq(&self) -> Option<u64> {
        self.messages.iter().filter_map(|m| m.seq).min()
    }

    /// Newest seq here: what `mark_read` reports.
    pub fn newest_seq(&self) -> Option<u64> {
        self.messages.iter().filter_map(|m| m.seq).max()
    }

    /// Keeps only the newest `keep` sent messages (and every unsent one): what a room not being
    /// read needs to show at once when opened again. Older pages come back from the local cache
    /// on the way up, like any older page.
    pub fn trim_to_newest(&mut self, keep: usize) {
        let sent = self.messages.iter().filter(|m| m.seq.is_some()).count();
        if sent <= keep {
            return;
        }
        // Sent messages come first, ascending: the first `sent - keep` are the oldest.
        self.messages.drain(..sent - keep);
        self.has_more = true;
        self.loading_older = false;
    }

    /// Inserts a message or replaces the one with the same client id (same sender) or seq.
    pub fn upsert(&mut self, message: MessageView) {
        if let Some(i) = self.messages.iter().position(|x| {
            (x.client_id == message.client_id && x.sender == message.sender)
                || (message.seq.is_some() && x.seq == message.seq)
        }) {
            // A sent message never goes back to pending: the `sent` event can arrive before
            // the `send` call returns the pending view of the same message.
            if self.messages[i].seq.is_some() && message.seq.is_none() {
                return;
            }
            self.messages.remove(i);
        }
        let at = match message.seq {
            Some(seq) => self
                .messages
                .iter()
                .position(|x| x.seq.is_none_or(|s| s > seq))
                .unwrap_or(self.messages.len()),
            None => self.messages.len(),
        };
        self.messages.insert(at, message);
    }
}
