//! REST routes of attachments (issue 14): upload, download, thumbnail. The rules live in
//! [`crate::attachments`]; this file speaks HTTP (streaming bodies, ranges, caching headers).

use super::{Path, Query};
use crate::attachments::{self, range, Which};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::AppState;
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use protocol::attachment::UploadQuery;
use protocol::{Attachment, ErrorBody, ErrorCode, RoomId};

/// A file's bytes in the OpenAPI document (a `Vec<u8>` would be an array of integers there).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
pub(super) struct FileBytes(#[allow(dead_code)] Vec<u8>);

#[utoipa::path(post, path = "/api/v1/rooms/{room}/attachments", tag = "attachments",
    security(("bearer" = [])),
    params(("room" = u64, Path), UploadQuery),
    request_body(content = FileBytes, content_type = "application/octet-stream",
        description = "the file's bytes (its type is sniffed from them)"),
    responses((status = 201, body = Attachment), (status = "4XX", body = ErrorBody)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    caller: Caller,
    Path(room): Path<u64>,
    Query(q): Query<UploadQuery>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<(StatusCode, axum::Json<Attachment>)> {
    state.limits.message(caller.user)?;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let stream = body.into_data_stream();
    let att =
        attachments::upload(&state, caller.user, RoomId(room), &q.name, declared, stream).await?;
    Ok((StatusCode::CREATED, axum::Json(att)))
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "32 lowercase hex digits"),
        ("range" = Option<String>, Header, description = "one range: `bytes=A-B`, `bytes=A-` or `bytes=-N`")),
    responses((status = 200, description = "the file, as its sniffed `content_type`", body = FileBytes, content_type = "*/*"),
        (status = 206, description = "the requested range"),
        (status = 304, description = "unchanged (If-None-Match)"),
        (status = "4XX", body = ErrorBody)))]
pub(super) async fn download(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, caller, &id, Which::Original, &headers).await
}

#[utoipa::path(get, path = "/api/v1/attachments/{id}/thumbnail", tag = "attachments",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "32 lowercase hex digits"),
        ("range" = Option<String>, Header, description = "one range, as for the file")),
    responses((status = 200, description = "a PNG or JPEG at most `attachments.thumbnail_px` on its longer side",
            content((FileBytes = "image/png"), (FileBytes = "image/jpeg"))),
        (status = 206, description = "the requested range"),
        (status = 304, description = "unchanged (If-None-Match)"),
        (status = "4XX", body = ErrorBody)))]
pub(super) async fn thumbnail(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    serve(&state, caller, &id, Which::Thumbnail, &headers).await
}

/// `Content-Disposition` with the file name (RFC 6266/8187: UTF-8, percent-encoded).
fn disposition(kind: &str, name: &str) -> HeaderValue {
    let mut encoded = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    HeaderValue::from_str(&format!("{kind}; filename*=UTF-8''{encoded}"))
        .unwrap_or_else(|_| HeaderValue::from_static("attachment"))
}

async fn serve(
    state: &AppState,
    caller: Caller,
    id: &str,
    which: Which,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let record = attachments::visible(state, caller.user, id).await?;
    if which == Which::Thumbnail && !record.thumbnail {
        return Err(ApiError::new(
            ErrorCode::AttachmentNotFound,
            "this attachment has no thumbnail",
        ));
    }
    // The bytes behind an id never change: the id is the validator.
    let etag = match which {
        Which::Original => format!("\"{id}\""),
        Which::Thumbnail => format!("\"{id}-t\""),
    };
    let content_type = match which {
        Which::Original => record.content_type.clone(),
        Which::Thumbnail => attachments::thumbnail_type(&record.content_type).to_owned(),
    };
    let mut out = HeaderMap::new();
    fn put(out: &mut HeaderMap, name: header::HeaderName, value: &str) {
        if let Ok(v) = HeaderValue::from_str(value) {
            out.insert(name, v);
        }
    }
    put(&mut out, header::ETAG, &etag);
    put(
        &mut out,
        header::CACHE_CONTROL,
        "private, max-age=31536000, immutable",
    );
    put(&mut out, header::ACCEPT_RANGES, "bytes");
    put(&mut out, header::CONTENT_TYPE, &content_type);
    put(&mut out, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    // Never a page of this origin: no scripts, even if a browser renders it.
    put(
        &mut out,
        header::CONTENT_SECURITY_POLICY,
        "sandbox; default-src 'none'",
    );
    let inline = content_type.starts_with("image/");
    out.insert(
        header::CONTENT_DISPOSITION,
        disposition(if inline { "inline" } else { "attachment" }, &record.name),
    );
    let matches = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    let size = attachments::size_of(state, id, which).await?;
    let ask = range::parse(
        headers.get(header::RANGE).and_then(|v| v.to_str().ok()),
        size,
    );
    let (status, wanted) = match ask {
        range::Ask::Whole => (StatusCode::OK, None),
        range::Ask::Part(r) => {
            put_range(&mut out, &format!("bytes {}-{}/{size}", r.start, r.end - 1));
            (StatusCode::PARTIAL_CONTENT, Some(r))
        }
        range::Ask::Unsatisfiable => {
            let mut response = ApiError::new(
                ErrorCode::RangeNotSatisfiable,
                "the range starts past the end of the file",
            )
            .into_response();
            put_range(response.headers_mut(), &format!("bytes */{size}"));
            return Ok(response);
        }
    };
    let length = wanted.as_ref().map_or(size, |r| r.end - r.start);
    let opened = match wanted {
        // An empty file has no byte range to ask storage for.
        Some(r) => attachments::open(state, id, which, Some(r)).await?,
        None if size == 0 => {
            return Ok((status, out, Body::empty()).into_response());
        }
        None => attachments::open(state, id, which, None).await?,
    };
    put(&mut out, header::CONTENT_LENGTH, &length.to_string());
    Ok((status, out, Body::from_stream(opened.body)).into_response())
}

fn put_range(headers: &mut HeaderMap, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        headers.insert(header::CONTENT_RANGE, v);
    }
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/rooms/{room}/attachments", post(upload))
        .route("/api/v1/attachments/{id}", get(download))
        .route("/api/v1/attachments/{id}/thumbnail", get(thumbnail))
}
