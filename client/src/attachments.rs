//! Attachments (docs/protocol.md §2.10): uploads and downloads, streamed.

use super::*;

impl Client {
    /// Uploads a file to `room` under `name` from `body` (`len` bytes when known: a streamed
    /// body needs it), within `timeout` (the client's own limit when `None`).
    pub async fn upload(
        &self,
        room: RoomId,
        name: &str,
        body: impl Into<reqwest::Body>,
        len: Option<u64>,
        timeout: Option<Duration>,
    ) -> Result<Attachment> {
        let body = body.into();
        self.api(Method::POST, &["rooms", &room.to_string(), "attachments"])
            .query(&[("name", name)])
            .map(|mut b| {
                if let Some(len) = len {
                    b = b.header(reqwest::header::CONTENT_LENGTH, len);
                }
                if let Some(timeout) = timeout {
                    b = b.timeout(timeout);
                }
                b.header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(body)
            })
            .json_answer(201)
            .await
    }

    /// Starts downloading attachment `id` (its thumbnail with `thumbnail`) within `timeout`
    /// (the client's own limit when `None`); read the body with [`Response::chunk`] or
    /// [`Response::bytes`]. A refusal (`attachment_not_found`) is [`Error::Server`].
    pub async fn download(
        &self,
        id: &str,
        thumbnail: bool,
        timeout: Option<Duration>,
    ) -> Result<Response> {
        let segments: &[&str] = if thumbnail {
            &["attachments", id, "thumbnail"]
        } else {
            &["attachments", id]
        };
        let req = self.api(Method::GET, segments).map(|b| match timeout {
            Some(timeout) => b.timeout(timeout),
            None => b,
        });
        let (response, _) = req.send(200).await?;
        Ok(response)
    }
}

/// Reads the next chunk of a download's body.
pub async fn next_chunk(response: &mut Response) -> Result<Option<impl AsRef<[u8]>>> {
    let url = response.url().path().to_owned();
    response.chunk().await.map_err(|source| Error::Transport {
        call: Call {
            method: Method::GET,
            path: url,
        },
        source,
    })
}
