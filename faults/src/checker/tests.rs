use super::*;
use crate::client::Composed;

const ALICE: UserId = UserId(1);
const BOB: UserId = UserId(2);
const ROOM: RoomId = RoomId(7);

fn message(seq: u64, sender: UserId, id: &str) -> RoomEvent {
    RoomEvent {
        room: ROOM,
        seq,
        ts: 0,
        event: EventBody::Message {
            id: id.into(),
            sender,
            sender_name: String::new(),
            body: format!("body of {id}"),
            edited_ts: None,
            deleted: false,
            reply_to: None,
            reactions: Vec::new(),
            mentions: Vec::new(),
            mention_room: false,
            attachments: Vec::new(),
        },
    }
}

/// Server history: alice's a1..a3 at seqs 1..3.
fn canonical() -> Canonical {
    let mut c = Canonical::new();
    c.insert(
        ROOM,
        vec![
            message(1, ALICE, "a1"),
            message(2, ALICE, "a2"),
            message(3, ALICE, "a3"),
        ],
    );
    c
}

/// Bob joined at seq 0 and saw `seqs` (content as on the server).
fn bob_saw(seqs: &[u64]) -> ClientState {
    let mut st = ClientState::default();
    st.start.insert(ROOM, 0);
    st.cursors.insert(ROOM, seqs.last().copied().unwrap_or(0));
    let seen = seqs
        .iter()
        .map(|s| (*s, Ident::Message(ALICE, format!("a{s}"))))
        .collect();
    st.seen.insert(ROOM, seen);
    st
}

fn alice_sent(acked: &[(&str, Option<u64>)]) -> ClientState {
    let mut st = ClientState::default();
    st.start.insert(ROOM, 0);
    st.cursors.insert(ROOM, 3);
    st.seen.insert(
        ROOM,
        (1..=3)
            .map(|s| (s, Ident::Message(ALICE, format!("a{s}"))))
            .collect(),
    );
    for (id, seq) in acked {
        st.composed.push(Composed {
            room: ROOM,
            id: (*id).into(),
            offline: false,
            big: false,
            reply_to: None,
            upload: None,
            seq: *seq,
            fresh_acks: u32::from(seq.is_some()),
            refused: None,
        });
    }
    st
}

fn run(bob: &ClientState, alice: &ClientState, canonical: &Canonical) -> Findings {
    let obs = [
        ClientObs {
            name: "bob",
            user: BOB,
            state: bob,
        },
        ClientObs {
            name: "alice",
            user: ALICE,
            state: alice,
        },
    ];
    check(canonical, &obs, None, &FileObs::default()).0
}

fn all_acked() -> ClientState {
    alice_sent(&[("a1", Some(1)), ("a2", Some(2)), ("a3", Some(3))])
}

#[test]
fn a_complete_history_is_clean() {
    let f = run(&bob_saw(&[1, 2, 3]), &all_acked(), &canonical());
    assert!(f.is_clean(), "{:?}", f.lines());
}

#[test]
fn a_missing_event_is_lost() {
    let mut bob = bob_saw(&[1, 3]);
    bob.violations
        .push("room 7: seq 3 arrived after 1 without a gap frame".into());
    let f = run(&bob, &all_acked(), &canonical());
    assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
    assert!(f.lost[0].contains("never received seqs 2"));
    assert_eq!(f.reordered.len(), 1);
}

#[test]
fn a_client_behind_the_server_is_lost() {
    let f = run(&bob_saw(&[1, 2]), &all_acked(), &canonical());
    assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
    assert!(f.lost[0].contains("ends at seq 2"));
}

#[test]
fn an_acked_message_missing_from_history_is_lost() {
    let alice = alice_sent(&[
        ("a1", Some(1)),
        ("a2", Some(2)),
        ("a3", Some(3)),
        ("a4", Some(4)),
    ]);
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
    assert!(
        f.lost.iter().any(|l| l.contains("a4 acked")),
        "{:?}",
        f.lines()
    );
}

#[test]
fn duplicates_are_found_on_the_client_and_on_the_server() {
    let mut bob = bob_saw(&[1, 2, 3]);
    bob.seen
        .get_mut(&ROOM)
        .unwrap()
        .push((2, Ident::Message(ALICE, "a2".into())));
    let mut twice = canonical();
    twice.get_mut(&ROOM).unwrap().push(message(4, ALICE, "a3"));
    let f = run(&bob, &all_acked(), &twice);
    assert!(f
        .duplicated
        .iter()
        .any(|l| l.contains("seq 2 received twice")));
    assert!(f.duplicated.iter().any(|l| l.contains("stored twice")));
}

#[test]
fn a_reused_seq_is_reordered() {
    let mut bob = bob_saw(&[1, 2, 3]);
    bob.seen.get_mut(&ROOM).unwrap()[1].1 = Ident::Message(BOB, "other".into());
    let f = run(&bob, &all_acked(), &canonical());
    assert_eq!(f.reordered.len(), 1, "{:?}", f.lines());
}

#[test]
fn an_outbox_message_never_delivered_is_reported() {
    let mut alice = all_acked();
    alice.composed.push(Composed {
        room: ROOM,
        id: "offline-1".into(),
        offline: true,
        big: false,
        reply_to: None,
        upload: None,
        seq: None,
        fresh_acks: 0,
        refused: None,
    });
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
    assert_eq!(f.outbox.len(), 1, "{:?}", f.lines());
    assert!(f.outbox[0].contains("composed offline"));
}

/// The message fields of `e`, to change them.
fn fields(
    e: &mut RoomEvent,
) -> (
    &mut Vec<Reaction>,
    &mut Option<u64>,
    &mut Vec<protocol::Attachment>,
) {
    match &mut e.event {
        EventBody::Message {
            reactions,
            reply_to,
            attachments,
            ..
        } => (reactions, reply_to, attachments),
        _ => unreachable!("a message"),
    }
}

fn react(emoji: &str, add: bool, confirmed: bool) -> crate::client::Change {
    crate::client::Change {
        room: ROOM,
        target: 1,
        op: Op::React {
            emoji: emoji.into(),
            add,
        },
        reference: "r1".into(),
        twice: false,
        confirmed,
        refused: None,
    }
}

#[test]
fn a_confirmed_reaction_missing_from_history_is_lost() {
    let mut alice = all_acked();
    alice.changes.push(react("👍", true, true));
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &canonical());
    assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
    assert!(f.lost[0].contains("lacks it"));
    // In history it is clean; a later removal that was confirmed wants it gone.
    let mut c = canonical();
    fields(&mut c.get_mut(&ROOM).unwrap()[0]).0.push(Reaction {
        emoji: "👍".into(),
        users: vec![ALICE],
    });
    assert!(run(&bob_saw(&[1, 2, 3]), &alice, &c).is_clean());
    alice.changes.push(react("👍", false, true));
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
    assert!(
        f.lost.iter().any(|l| l.contains("still has it")),
        "{:?}",
        f.lines()
    );
    // Unanswered at the end: an outbox failure.
    alice.changes.push(react("👍", true, false));
    assert_eq!(run(&bob_saw(&[1, 2, 3]), &alice, &c).outbox.len(), 1);
}

#[test]
fn a_reaction_counted_twice_is_duplicated() {
    let mut c = canonical();
    fields(&mut c.get_mut(&ROOM).unwrap()[0]).0.push(Reaction {
        emoji: "👍".into(),
        users: vec![BOB, BOB],
    });
    let f = run(&bob_saw(&[1, 2, 3]), &all_acked(), &c);
    assert_eq!(f.duplicated.len(), 1, "{:?}", f.lines());
    assert!(f.duplicated[0].contains("counted twice"));
}

#[test]
fn a_client_whose_view_differs_from_history_lost_an_event() {
    let mut bob = bob_saw(&[1, 2, 3]);
    for (seq, e) in canonical()[&ROOM].iter().enumerate() {
        let views = bob.views.entry(ROOM).or_default();
        crate::client::apply(views, seq as u64 + 1, e.event.clone());
    }
    assert!(run(&bob, &all_acked(), &canonical()).is_clean());
    // Bob missed the removal of alice's 🎉 on a1.
    crate::client::apply(
        bob.views.entry(ROOM).or_default(),
        4,
        EventBody::ReactionAdded {
            target: 1,
            user: ALICE,
            emoji: "🎉".into(),
        },
    );
    let f = run(&bob, &all_acked(), &canonical());
    assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
    assert!(f.lost[0].contains("reactions"));
}

#[test]
fn a_reply_stored_with_another_target_is_reordered() {
    let mut alice = all_acked();
    alice.composed[2].reply_to = Some((1, Ident::Message(ALICE, "a1".into())));
    let mut c = canonical();
    *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(1);
    assert!(run(&bob_saw(&[1, 2, 3]), &alice, &c).is_clean());
    *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(2);
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
    assert_eq!(f.reordered.len(), 1, "{:?}", f.lines());
    // Answering what the client held at seq 1, when history holds another message there.
    alice.composed[2].reply_to = Some((1, Ident::Message(BOB, "b1".into())));
    *fields(&mut c.get_mut(&ROOM).unwrap()[2]).1 = Some(1);
    let f = run(&bob_saw(&[1, 2, 3]), &alice, &c);
    assert!(
        f.reordered.iter().any(|l| l.contains("answered")),
        "{:?}",
        f.lines()
    );
}

#[test]
fn a_file_missing_or_different_on_a_node_is_lost_or_corrupted() {
    let mut c = canonical();
    let att = protocol::Attachment {
        id: "0123456789abcdef0123456789abcdef".into(),
        name: "f.bin".into(),
        size: 3,
        content_type: "application/octet-stream".into(),
        width: None,
        height: None,
        thumbnail: false,
    };
    fields(&mut c.get_mut(&ROOM).unwrap()[0])
        .2
        .push(att.clone());
    let bytes = |fingerprint| Fetched::Bytes {
        len: 3,
        fingerprint,
    };
    let check_with = |fetched: Vec<(usize, Fetched)>| {
        let files = FileObs {
            fetched: [(att.id.clone(), fetched)].into_iter().collect(),
            ..FileObs::default()
        };
        let (bob, alice) = (bob_saw(&[1, 2, 3]), all_acked());
        let obs = [
            ClientObs {
                name: "bob",
                user: BOB,
                state: &bob,
            },
            ClientObs {
                name: "alice",
                user: ALICE,
                state: &alice,
            },
        ];
        check(&c, &obs, None, &files).0
    };
    assert!(check_with(vec![(0, bytes(7)), (1, bytes(7))]).is_clean());
    let f = check_with(vec![(0, bytes(7)), (1, bytes(8))]);
    assert_eq!(f.corrupted.len(), 1, "{:?}", f.lines());
    let f = check_with(vec![(0, bytes(7)), (1, Fetched::Status(404))]);
    assert_eq!(f.lost.len(), 1, "{:?}", f.lines());
    assert!(f.lost[0].contains("without its file"));
}

/// The store lost seq 3 and raised the room past it: history holds 1, 2 and 4. Bob
/// received 1, 2 (3 when `held`) and 4.
fn after_loss(held: bool, told: bool) -> (Canonical, ClientState) {
    let mut c = canonical();
    if let Some(evs) = c.get_mut(&ROOM) {
        evs.truncate(2);
        evs.push(message(4, ALICE, "a4"));
    }
    let seqs: Vec<u64> = if held {
        vec![1, 2, 3, 4]
    } else {
        vec![1, 2, 4]
    };
    let mut bob = bob_saw(&seqs);
    if told {
        bob.closes.push(protocol::close::STORE_RESET);
    }
    (c, bob)
}

/// Alice sent a1..a4; `a3` says whether a3 was acked (and received back).
fn alice_after_loss(a3: bool) -> ClientState {
    let mut acked = vec![("a1", Some(1)), ("a2", Some(2)), ("a4", Some(4))];
    if a3 {
        acked.insert(2, ("a3", Some(3)));
    }
    let mut alice = alice_sent(&acked);
    let seqs: Vec<u64> = if a3 { vec![1, 2, 3, 4] } else { vec![1, 2, 4] };
    alice.seen.insert(
        ROOM,
        seqs.iter()
            .map(|s| (*s, Ident::Message(ALICE, format!("a{s}"))))
            .collect(),
    );
    alice.cursors.insert(ROOM, 4);
    alice
}

fn judge(c: &Canonical, bob: &ClientState, alice: &ClientState) -> (Findings, StoreLoss) {
    let obs = [
        ClientObs {
            name: "bob",
            user: BOB,
            state: bob,
        },
        ClientObs {
            name: "alice",
            user: ALICE,
            state: alice,
        },
    ];
    let mut f = check(c, &obs, None, &FileObs::default()).0;
    let loss = judge_store_loss(c, &obs, &mut f);
    (f, loss)
}

#[test]
fn only_clients_that_held_a_lost_write_must_be_told() {
    // Bob had received seq 3, which the store lost, and got no 4010 and no gap: untold.
    // Alice's a3 was acked and is gone: she held it too, and was not told either.
    let (c, bob) = after_loss(true, false);
    let (f, loss) = judge(&c, &bob, &alice_after_loss(true));
    assert!(f.is_clean(), "the loss itself is allowed: {:?}", f.lines());
    assert_eq!(
        (loss.affected, loss.untold.len(), loss.acked_lost),
        (2, 2, 1)
    );
    assert!(
        loss.untold[0].contains("bob: received room 7 seq 3, lost since"),
        "{loss:?}"
    );
    // Bob told with 4010; alice's a3 never existed: one held it, and was told.
    let (c, bob) = after_loss(true, true);
    let (_, loss) = judge(&c, &bob, &alice_after_loss(false));
    assert_eq!((loss.affected, loss.untold.len()), (1, 0), "{loss:?}");
    // A loss nobody had seen: nobody to tell, nobody counted.
    let (c, bob) = after_loss(false, false);
    let (f, loss) = judge(&c, &bob, &alice_after_loss(false));
    assert!(f.is_clean(), "{:?}", f.lines());
    assert_eq!(loss, StoreLoss::default());
}

#[test]
fn a_reused_seq_still_fails_a_run_that_lost_writes() {
    let (mut c, bob) = after_loss(true, true);
    if let Some(evs) = c.get_mut(&ROOM) {
        evs.insert(2, message(3, BOB, "b1"));
    }
    let (f, loss) = judge(&c, &bob, &alice_after_loss(true));
    assert!(!f.reordered.is_empty(), "{:?}", f.lines());
    assert_eq!(loss.affected, 2);
}

const DESK: UserId = UserId(3);

/// The desktop app (user 3) joined at seq 3 and wrote `composed`; its cache holds
/// history as it is.
fn desktop(c: &Canonical, composed: Vec<DesktopComposed>) -> DesktopObs {
    let cached = c[&ROOM]
        .iter()
        .filter_map(|e| match &e.event {
            EventBody::Message {
                id,
                sender,
                body,
                reactions,
                deleted,
                reply_to,
                attachments,
                ..
            } => Some(MessageView {
                room: ROOM,
                seq: Some(e.seq),
                client_id: id.clone(),
                sender: *sender,
                sender_name: String::new(),
                body: body.clone(),
                ts: 0,
                edited: false,
                deleted: *deleted,
                status: protocol::ipc::MessageStatus::Sent,
                reply_to: *reply_to,
                quote: None,
                reactions: reactions.clone(),
                mentions: Vec::new(),
                mention_room: false,
                attachments: attachments.clone(),
                uploads: Vec::new(),
            }),
            _ => None,
        })
        .collect();
    let last = c[&ROOM].last().map(|e| e.seq);
    DesktopObs {
        name: "desk".into(),
        user: DESK,
        composed,
        start: BTreeMap::from([(ROOM, 3)]),
        rooms: BTreeMap::from([(ROOM, (last, None, cached))]),
        outbox_pending: 0,
        failed: BTreeMap::new(),
        reactions: Vec::new(),
        reactions_pending: 0,
    }
}

fn desk_wrote(id: &str, reply_to: Option<u64>) -> DesktopComposed {
    DesktopComposed {
        room: ROOM,
        client_id: id.into(),
        offline: false,
        reply_to,
        file: None,
    }
}

fn check_desk(c: &Canonical, d: &DesktopObs) -> Findings {
    let mut bob = bob_saw(&(1..=c[&ROOM].len() as u64).collect::<Vec<_>>());
    let mut alice = all_acked();
    alice.cursors.insert(ROOM, c[&ROOM].len() as u64);
    alice.seen.insert(
        ROOM,
        c[&ROOM]
            .iter()
            .map(|e| (e.seq, Ident::of(&e.event)))
            .collect(),
    );
    bob.seen.insert(ROOM, alice.seen[&ROOM].clone());
    let obs = [
        ClientObs {
            name: "bob",
            user: BOB,
            state: &bob,
        },
        ClientObs {
            name: "alice",
            user: ALICE,
            state: &alice,
        },
    ];
    check(c, &obs, Some(d), &FileObs::default()).0
}

#[test]
fn the_desktop_apps_replies_and_reactions_are_judged() {
    // The app answered a3 with d1 and reacted to it with a thumb.
    let mut c = canonical();
    let mut reply = message(4, DESK, "d1");
    if let EventBody::Message { reply_to, .. } = &mut reply.event {
        *reply_to = Some(3);
    }
    if let Some(evs) = c.get_mut(&ROOM) {
        evs.push(reply);
    }
    let thumb = DesktopReaction {
        room: ROOM,
        seq: 3,
        emoji: "👍".into(),
    };
    let with_thumb = |c: &mut Canonical| {
        if let Some(EventBody::Message { reactions, .. }) =
            c.get_mut(&ROOM).map(|evs| &mut evs[2].event)
        {
            reactions.push(Reaction {
                emoji: "👍".into(),
                users: vec![DESK],
            });
        }
    };
    let mut ok = c.clone();
    with_thumb(&mut ok);
    let mut d = desktop(&ok, vec![desk_wrote("d1", Some(3))]);
    d.reactions.push(thumb.clone());
    let f = check_desk(&ok, &d);
    assert!(f.is_clean(), "{:?}", f.lines());
    // Stored answering another message: reordered.
    let d = desktop(&ok, vec![desk_wrote("d1", Some(2))]);
    let f = check_desk(&ok, &d);
    assert!(
        f.reordered.iter().any(|l| l.contains("reply d1 to seq 2")),
        "{:?}",
        f.lines()
    );
    // The reaction never reached history: lost (the cache agreeing does not help).
    let mut d = desktop(&c, vec![desk_wrote("d1", Some(3))]);
    d.reactions.push(thumb);
    let f = check_desk(&c, &d);
    assert!(
        f.lost.iter().any(|l| l.contains("reaction 👍")),
        "{:?}",
        f.lines()
    );
    // A reply refused because its original is gone (lost: message_not_found; deleted:
    // message_deleted) is told (failed), not lost; any other refusal is reported.
    let mut c = canonical();
    if let Some(EventBody::Message { deleted, .. }) = c.get_mut(&ROOM).map(|evs| &mut evs[1].event)
    {
        *deleted = true;
    }
    let mut d = desktop(
        &c,
        vec![
            desk_wrote("d2", Some(9)),
            desk_wrote("d3", None),
            desk_wrote("d4", Some(2)),
            desk_wrote("d5", Some(1)),
        ],
    );
    d.failed.insert("d2".into(), "message_not_found".into());
    d.failed.insert("d3".into(), "invalid_message".into());
    d.failed.insert("d4".into(), "message_deleted".into());
    d.failed.insert("d5".into(), "message_deleted".into());
    let f = check_desk(&c, &d);
    let reported: Vec<&String> = f.outbox.iter().collect();
    assert_eq!(reported.len(), 2, "{:?}", f.lines());
    assert!(reported[0].contains("d3") && reported[0].contains("failed: invalid_message"));
    assert!(reported[1].contains("d5") && reported[1].contains("failed: message_deleted"));
}

#[test]
fn a_wipe_nobody_was_told_about_is_a_silent_loss() {
    let told = WipeObs {
        name: "a",
        signal: Some("close 4010".into()),
        state: None,
    };
    let silent = WipeObs {
        name: "b",
        signal: None,
        state: None,
    };
    assert!(check_wipe(&[told]).0.is_clean());
    let told = WipeObs {
        name: "a",
        signal: Some("close 4010".into()),
        state: None,
    };
    let (f, _) = check_wipe(&[told, silent]);
    assert_eq!(f.lost.len(), 1);
}
