//! The Azure Functions front end: how the Functions host delivers a heartbeat, turned into the
//! core's [`HeartbeatRequest`](super::core::HeartbeatRequest). The host speaks in one of two
//! modes (docs/platform.md §1), and both end in [`Core::answer`](super::core::Core::answer):
//! - forwarding mode ([`forwarding`]): the original request arrives as it was sent, on `/api/ping`;
//! - JSON invocation mode ([`invocation`]): the host wraps the request in a JSON envelope and
//!   `POST`s it to `/Ping`, and expects the answer wrapped the same way.
//!
//! What only Azure knows lives here too: which forwarded address to trust ([`client_ip`]) and the
//! invocation id header.

pub(crate) mod client_ip;
pub(crate) mod forwarding;
pub(crate) mod invocation;

use axum::extract::{Request, State};
use axum::response::Response;

use super::{AppState, plain};
use crate::handler::core::Headers;

/// The host's id for one invocation, on both the forwarded request and the envelope's `POST`.
pub(crate) const INVOCATION_ID_HEADER: &str = "x-azure-functions-invocationid";

/// `customDimensions.host_mode` of a heartbeat delivered in each mode (docs/telemetry.md).
pub(crate) const FORWARDING: &str = "forwarding";
pub(crate) const INVOCATION: &str = "invocation";

/// Routes a request by path. The heartbeat paths are matched case-insensitively because the
/// platform's routing is (docs/platform.md §1).
pub(crate) async fn route_by_path(State(state): State<AppState>, request: Request) -> Response {
    let path = request.uri().path();
    if path.eq_ignore_ascii_case("/api/ping") {
        forwarding::ping(state, request).await
    } else if path.eq_ignore_ascii_case("/ping") {
        invocation::ping(state, request).await
    } else {
        plain(state.core.not_found(path))
    }
}

/// The trusted client address of a request the host delivered (docs/platform.md §1).
pub(crate) fn client_ip(headers: &Headers) -> Option<std::net::IpAddr> {
    client_ip::trusted_client_ip(headers.get("x-forwarded-for"))
}
