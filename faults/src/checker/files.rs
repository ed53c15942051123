//! Attachments: every file a message needs is downloadable and byte-identical; nothing else is kept.

use super::state::message_at;
use super::*;

/// What downloading one file gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fetched {
    Bytes { len: u64, fingerprint: u64 },
    Status(u16),
    Failed(String),
}

/// The files of a run: each attachment downloaded from every node, and what the storage holds
/// once the collector had its pass.
#[derive(Debug, Default)]
pub struct FileObs {
    /// Per attachment id: (node index, what the download gave).
    pub fetched: BTreeMap<String, Vec<(usize, Fetched)>>,
    /// Half-written upload files (`blobs/{id}#N`) the collector left after they were aged
    /// past its grace period.
    pub leftovers: Vec<String>,
    /// Files of deleted messages still stored after the collector's passes.
    pub kept: Vec<String>,
}

/// Every file of a message in history downloads from every node with the same bytes (and the
/// acknowledged ones with the bytes uploaded); a send refused for its file had a file that was
/// acknowledged; the collector left no half-written file and no file of a deleted message.
pub fn check_files(
    canonical: &Canonical,
    clients: &[ClientObs<'_>],
    files: &FileObs,
    f: &mut Findings,
    vol: &mut Volume,
) {
    let fetched = |id: &str| files.fetched.get(id).map(Vec::as_slice).unwrap_or(&[]);
    for (room, events) in canonical {
        for e in events {
            let EventBody::Message {
                attachments,
                deleted: false,
                ..
            } = &e.event
            else {
                continue;
            };
            for a in attachments {
                let at = format!("room {room} seq {}: file {}", e.seq, a.id);
                let got = fetched(&a.id);
                if got.is_empty() {
                    f.other.push(format!("{at} was not downloaded"));
                }
                let mut prints = BTreeSet::new();
                for (node, fetch) in got {
                    match fetch {
                        Fetched::Bytes { len, fingerprint } => {
                            if *len != a.size {
                                f.corrupted.push(format!(
                                    "{at} downloads with {len} bytes from node {node}, the message says {}",
                                    a.size
                                ));
                            }
                            prints.insert(*fingerprint);
                        }
                        other => f.lost.push(format!(
                            "{at} is missing on node {node} ({other:?}): a message without its file"
                        )),
                    }
                }
                if prints.len() > 1 {
                    f.corrupted.push(format!(
                        "{at} downloads with different bytes from different nodes"
                    ));
                }
            }
        }
    }
    for c in clients {
        for m in &c.state.composed {
            let Some(upload) = &m.upload else { continue };
            vol.upload_retries += u64::from(upload.failed_attempts);
            let Some(stored) = &upload.stored else {
                continue; // refused uploads are violations; unfinished ones leave m unsent
            };
            let at = format!("{}: {} file {} ({})", c.name, m.id, stored.id, upload.name);
            if upload.image
                && (stored.content_type != "image/png"
                    || stored.width.is_none()
                    || !stored.thumbnail)
            {
                f.other.push(format!(
                    "{at}: an image stored as {} without dimensions or thumbnail",
                    stored.content_type
                ));
            }
            match (m.seq, m.refused) {
                (None, Some(ErrorCode::AttachmentNotFound)) => f.lost.push(format!(
                    "{at}: the upload was acknowledged, the send refused attachment_not_found"
                )),
                (Some(seq), _) => {
                    let Some(EventBody::Message {
                        attachments,
                        deleted,
                        ..
                    }) = message_at(canonical, m.room, seq)
                    else {
                        continue; // reported by the event checks
                    };
                    vol.files += 1;
                    vol.file_bytes += upload.bytes.len() as u64;
                    if *deleted {
                        for (node, fetch) in fetched(&stored.id) {
                            if !matches!(fetch, Fetched::Status(404)) {
                                f.other.push(format!(
                                    "{at}: its message is deleted, node {node} still serves it ({fetch:?})"
                                ));
                            }
                        }
                        continue;
                    }
                    if attachments.as_slice() != std::slice::from_ref(stored) {
                        f.lost.push(format!(
                            "{at}: the message at seq {seq} carries {attachments:?}"
                        ));
                        continue;
                    }
                    let want = Fetched::Bytes {
                        len: upload.bytes.len() as u64,
                        fingerprint: fingerprint(&upload.bytes),
                    };
                    for (node, fetch) in fetched(&stored.id) {
                        if let Fetched::Bytes { .. } = fetch {
                            if *fetch != want {
                                f.corrupted.push(format!(
                                    "{at} downloads from node {node} with other bytes than uploaded ({fetch:?}, uploaded {want:?})"
                                ));
                            }
                        }
                    }
                }
                _ => {}
            }
        }
    }
    for l in &files.leftovers {
        f.other.push(format!(
            "the half-written upload file {l} outlived the collector's grace period"
        ));
    }
    for k in &files.kept {
        f.other.push(format!(
            "{k}: the file of a deleted message is still stored"
        ));
    }
}
