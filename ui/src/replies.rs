//! Replies in a loaded timeline: when an original changes (edited, deleted), the quotes of the
//! replies to it change with it, live (protocol §1.7: no event is sent per reply).

use protocol::ipc::{MessageView, Quote};

/// The quote a reply to `original` shows.
pub fn quote_of(original: &MessageView) -> Quote {
    Quote {
        sender_name: original.sender_name.clone(),
        text: if original.deleted {
            String::new()
        } else {
            markup::first_line(&original.body, Quote::MAX_CHARS)
        },
        deleted: original.deleted,
    }
}

/// Gives every reply to `original` (same room, `reply_to` its seq) its current quote.
pub fn refresh_quotes(messages: &mut [MessageView], original: &MessageView) {
    let Some(seq) = original.seq else {
        return;
    };
    for m in messages
        .iter_mut()
        .filter(|m| m.room == original.room && m.reply_to == Some(seq))
    {
        let quote = quote_of(original);
        if m.quote.as_ref() != Some(&quote) {
            m.quote = Some(quote);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use protocol::ipc::MessageStatus;
    use protocol::{RoomId, UserId};

    fn msg(seq: u64, body: &str, reply_to: Option<u64>) -> MessageView {
        MessageView {
            room: RoomId(1),
            seq: Some(seq),
            client_id: format!("c{seq}"),
            sender: UserId(2),
            sender_name: "bob".into(),
            body: body.into(),
            ts: 0,
            edited: false,
            deleted: false,
            status: MessageStatus::Sent,
            reply_to,
            quote: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
            uploads: Vec::new(),
        }
    }

    #[test]
    fn a_deleted_original_turns_quotes_into_deleted_message() {
        let mut list = vec![
            msg(1, "first", None),
            msg(2, "re", Some(1)),
            msg(3, "x", None),
        ];
        let mut original = msg(1, "**first** line\nsecond", None);
        refresh_quotes(&mut list, &original);
        assert_eq!(
            list[1].quote.as_ref().map(|q| q.text.as_str()),
            Some("first line")
        );
        assert_eq!(list[2].quote, None);
        original.deleted = true;
        original.body.clear();
        refresh_quotes(&mut list, &original);
        assert!(list[1].quote.as_ref().is_some_and(|q| q.deleted));
    }
}
