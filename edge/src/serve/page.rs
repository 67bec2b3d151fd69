//! The staff page: one static HTML file with inline CSS and JavaScript, embedded in the
//! binary (no build toolchain). It polls `/api/status`, follows `/api/events`, refreshes
//! `/api/screen.jpg`, and takes the token from the address's `#token=...` fragment.

use tiny_http::{Header, Response};

/// The page's HTML.
pub const PAGE_HTML: &str = include_str!("page.html");

pub(crate) fn reply() -> Response<std::io::Cursor<Vec<u8>>> {
    Response::from_data(PAGE_HTML.as_bytes().to_vec())
        .with_header(
            Header::from_bytes(&b"Content-Type"[..], &b"text/html; charset=utf-8"[..])
                .expect("valid header"),
        )
        .with_header(
            Header::from_bytes(&b"Cache-Control"[..], &b"no-cache"[..]).expect("valid header"),
        )
}
