//! Acknowledged writes the store lost (a rollback): who held them, and whether each was told.

use super::*;

/// How a run where the store lost acknowledged writes came out (see [`judge_store_loss`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct StoreLoss {
    /// Acknowledged messages the store lost.
    pub acked_lost: u64,
    /// Scripted clients that held something the store lost: an event they received, a message
    /// acknowledged to them. Only they have something to be told about.
    pub affected: u32,
    /// Of those, the ones told neither by 4010 nor by a gap, each with what it held.
    pub untold: Vec<String>,
}

/// What `client` holds that history no longer has (the first such thing): an event it
/// received at a seq history lacks or holds other content under, or a message acknowledged to
/// it that is not in history. `None`: the store lost nothing this client knew of, so it has
/// nothing to be told (a cut of the AOF that held no event, a loss in rooms it is not in).
pub fn held_lost(canonical: &Canonical, client: &ClientObs<'_>) -> Option<String> {
    let st = client.state;
    for (room, seen) in &st.seen {
        for (seq, ident) in seen {
            match event_at(canonical, *room, *seq) {
                Some(e) if Ident::of(&e.event) == *ident => {}
                Some(_) => return Some(format!("received room {room} seq {seq}, reused since")),
                None => return Some(format!("received room {room} seq {seq}, lost since")),
            }
        }
    }
    let index = message_index(canonical);
    st.composed
        .iter()
        .filter(|m| m.seq.is_some())
        .find(|m| !index.contains_key(&(client.user, m.id.clone())))
        .map(|m| {
            format!(
                "{} acked (room {} seq {}), lost since",
                m.id,
                m.room,
                m.seq.unwrap_or_default()
            )
        })
}

/// Judges a run where the store lost acknowledged writes (its AOF tail cut, or Redis killed
/// while an AOF write was postponed). What it lost may be missing anywhere (history holes,
/// acked messages, events clients hold): allowed, and those findings are dropped from `f`. A
/// seq reused for other content, or a live duplicate, still fails. Told: closed with 4010,
/// or a gap over what it missed; only clients that held something lost need telling.
pub fn judge_store_loss(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    f: &mut Findings,
) -> StoreLoss {
    let mut out = StoreLoss {
        acked_lost: f
            .lost
            .iter()
            .filter(|l| l.contains(" acked (room "))
            .count() as u64,
        ..StoreLoss::default()
    };
    for c in clients {
        let Some(held) = held_lost(canonical, c) else {
            continue;
        };
        out.affected += 1;
        let told =
            c.state.closes.contains(&protocol::close::STORE_RESET) || !c.state.gaps.is_empty();
        if !told {
            out.untold.push(format!(
                "{}: {held}; told neither by 4010 nor by a gap",
                c.name
            ));
        }
    }
    f.lost.clear();
    // A client drops its cursors on 4010 (as the protocol says) and starts again, so it may
    // receive an event again; a live duplicate ("delivered again" on one socket) or different
    // content under a seq still fails.
    f.duplicated.retain(|l| !l.contains(" received twice"));
    f.gapped.clear();
    f.outbox.clear();
    f.reordered
        .retain(|l| !l.contains("without a gap") && !l.contains("gap after"));
    f.other.retain(|l| !l.contains("welcome lacks"));
    out
}
