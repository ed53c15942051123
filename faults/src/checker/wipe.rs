//! A store wipe: every client was told its history is gone.

use super::*;

/// What a client that lived through a store wipe must show.
pub struct WipeObs<'a> {
    pub name: &'a str,
    /// The typed signal it got (close code or error), if any.
    pub signal: Option<String>,
    pub state: Option<&'a ClientState>,
}

/// A run whose store was wiped: history is gone (documented), so instead of comparing with the
/// server, check that (1) every client was told, with a typed close or error, (2) no client saw
/// a seq twice or out of order, and (3) clients agree on the content of every seq they saw.
pub fn check_wipe(clients: &[WipeObs<'_>]) -> (Findings, Volume) {
    let mut f = Findings::default();
    let mut vol = Volume::default();
    let mut content: HashMap<(RoomId, u64), (&Ident, &str)> = HashMap::new();
    for c in clients {
        if c.signal.is_none() {
            f.lost.push(format!(
                "{}: the store was wiped and the client was never told (silent loss)",
                c.name
            ));
        }
        let Some(st) = c.state else { continue };
        for v in &st.violations {
            f.classify(c.name, v);
        }
        vol.sent += st.composed.len() as u64;
        vol.offline += st.composed.iter().filter(|m| m.offline).count() as u64;
        for (room, seen) in &st.seen {
            vol.delivered += seen.len() as u64;
            for (seq, ident) in seen {
                match content.get(&(*room, *seq)) {
                    Some((other, who)) if *other != ident => f.reordered.push(format!(
                        "room {room} seq {seq}: {} saw {ident:?}, {who} saw {other:?}",
                        c.name
                    )),
                    Some(_) => {}
                    None => {
                        content.insert((*room, *seq), (ident, c.name));
                    }
                }
            }
        }
    }
    (f, vol)
}

pub(super) fn short_list(seqs: &[u64]) -> String {
    let shown: Vec<String> = seqs.iter().take(10).map(u64::to_string).collect();
    if seqs.len() > 10 {
        format!("{} … ({} in all)", shown.join(", "), seqs.len())
    } else {
        shown.join(", ")
    }
}
