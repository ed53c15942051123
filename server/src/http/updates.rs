//! REST routes of client updates (issue 16): the update check the desktop app's updater calls
//! and the package download. The choice of version and file lives in [`crate::updates`]; this
//! file speaks HTTP (the manifest's absolute URL, streaming the file with its length).

use super::attachments::FileBytes;
use super::{Json, Path};
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::updates::{self, Platform};
use crate::AppState;
use axum::body::Body;
use axum::extract::{ConnectInfo, State};
use axum::http::{header, Extensions, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use protocol::rest::UpdateManifest;
use protocol::{ErrorBody, ErrorCode};
use std::net::SocketAddr;

#[utoipa::path(get, path = "/api/v1/updates/{target}/{arch}/{bundle}/{current_version}",
    tag = "updates", security(("bearer" = [])),
    params(("target" = String, Path, description = "`linux`, `darwin` or `windows`"),
        ("arch" = String, Path, description = "`x86_64`, `aarch64`, `i686`, `armv7` or `riscv64`"),
        ("bundle" = String, Path, description = "how the app was installed: `deb`, `rpm`, `appimage`, `app`, `msi`, `nsis` or `unknown`"),
        ("current_version" = String, Path, description = "the running app's version (semver)")),
    responses((status = 200, body = UpdateManifest, description = "a newer version for this platform"),
        (status = 204, description = "nothing newer for this platform"),
        (status = "4XX", body = ErrorBody)))]
pub(super) async fn check(
    State(state): State<AppState>,
    _caller: Caller,
    Path((target, arch, bundle, current)): Path<(String, String, String, String)>,
    extensions: Extensions,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let platform = Platform::parse(&target, &arch, &bundle)?;
    let current = semver::Version::parse(&current).map_err(|_| {
        crate::error::ApiError::new(
            ErrorCode::BadRequest,
            "current_version is not a semantic version",
        )
    })?;
    let Some(dir) = &state.config.updates_dir else {
        return Err(updates::not_found("this server serves no client updates"));
    };
    let Some(offer) = updates::newest(dir, platform, &current).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let base = public_base(&state, &extensions, &headers);
    Ok(Json(UpdateManifest {
        url: format!(
            "{base}/api/v1/updates/files/{}/{}",
            offer.version, offer.file
        ),
        version: offer.version.to_string(),
        notes: offer.notes,
        signature: offer.signature,
    })
    .into_response())
}

#[utoipa::path(get, path = "/api/v1/updates/files/{version}/{file}", tag = "updates",
    security(("bearer" = [])),
    params(("version" = String, Path, description = "a version directory (semver)"),
        ("file" = String, Path, description = "a file of it: letters, digits, `.`, `_`, `-`, `+`")),
    responses((status = 200, description = "the file", body = FileBytes, content_type = "application/octet-stream"),
        (status = "4XX", body = ErrorBody)))]
pub(super) async fn file(
    State(state): State<AppState>,
    _caller: Caller,
    Path((version, name)): Path<(String, String)>,
) -> ApiResult<Response> {
    let Some(dir) = &state.config.updates_dir else {
        return Err(updates::not_found("this server serves no client updates"));
    };
    let path = updates::file_path(dir, &version, &name)?;
    let missing = || updates::not_found("no such update file");
    let file = tokio::fs::File::open(&path).await.map_err(|_| missing())?;
    let meta = file.metadata().await.map_err(|_| missing())?;
    if !meta.is_file() {
        return Err(missing());
    }
    let mut out = HeaderMap::new();
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    out.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.len()));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        out.insert(header::CONTENT_DISPOSITION, v);
    }
    out.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(
        file,
        256 * 1024,
    ));
    Ok((StatusCode::OK, out, body).into_response())
}

/// `scheme://host[:port]` of this server as the app reached it, for the manifest's download
/// URL: https when the server terminates TLS itself, or when a trusted proxy says so
/// (`X-Forwarded-Proto`); the host from the request's `Host` header (reverse proxies pass it
/// on), else the listen address.
fn public_base(state: &AppState, extensions: &Extensions, headers: &HeaderMap) -> String {
    let peer = extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let forwarded = peer
        .filter(|ip| state.proxies.trusts(*ip))
        .and_then(|_| headers.get("x-forwarded-proto"))
        .and_then(|v| v.to_str().ok())
        .filter(|p| *p == "https" || *p == "http");
    let scheme = match (state.config.tls_cert.is_some(), forwarded) {
        (true, _) => "https",
        (false, Some(p)) => p,
        (false, None) => "http",
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .filter(|h| !h.contains('@'))
        .and_then(|h| h.parse::<axum::http::uri::Authority>().ok())
        .map_or_else(|| state.config.listen.to_string(), |a| a.to_string());
    format!("{scheme}://{host}")
}

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/api/v1/updates/{target}/{arch}/{bundle}/{current_version}",
            get(check),
        )
        .route("/api/v1/updates/files/{version}/{file}", get(file))
}
