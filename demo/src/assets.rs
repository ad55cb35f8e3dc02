//! The pages and the files they load, served as a product would serve them.
//!
//! | path | what | from |
//! |---|---|---|
//! | `/`, `/room`, `/live` | the pages | `static/{index,room,live}.html` |
//! | `/static/*` | their scripts, style sheet and icon | `static/` |
//! | `/pkg/*` | the built `@alight/client` package (`index.js`, the `.wasm`) | `client-wasm/pkg` |
//! | `/vendor/electric-client.mjs` | the stock Electric client | `node_modules/@electric-sql/client` |
//!
//! Every response here:
//! - is compressed with brotli or gzip when the browser accepts it (tower-http's
//!   `CompressionLayer`, on the fly: brotli at level 4, as nginx does on the fly; images other
//!   than SVG and bodies under 32 bytes are left alone). The `.wasm` goes out as
//!   `application/wasm`, which `WebAssembly.instantiateStreaming` requires.
//! - carries `Cache-Control: no-cache` with its `Last-Modified`: the browser keeps the file and
//!   asks each time whether it changed (a `304 Not Modified` without a body when it has not).
//!   The file names carry no content hash, so a lifetime without revalidation would let a
//!   browser run the modules of two versions together after an upgrade; without any
//!   `Cache-Control`, browsers guess a lifetime from `Last-Modified` and do exactly that.
//! - a missing `/pkg/*` file answers 404 with a body that tells the developer to build the client
//!   (the page itself says something a user understands, see `static/client.js`).

use std::path::{Path, PathBuf};

use axum::Router;
use axum::handler::HandlerWithoutStateExt;
use axum::http::{HeaderValue, StatusCode, header};
use tower_http::compression::CompressionLayer;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

/// The stock Electric client's browser build (from `npm ci`), for the live table page.
const ELECTRIC_CLIENT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../node_modules/@electric-sql/client/dist/index.browser.mjs"
);

/// The routes of the pages and their files: `static_dir` holds the pages and their assets,
/// `pkg_dir` the built browser client, if it has been built.
pub fn router(static_dir: &Path, pkg_dir: &Path) -> Router {
    let pkg_dir_owned: PathBuf = pkg_dir.to_path_buf();
    let client_missing = move || async move {
        let body = if pkg_dir_owned.is_dir() {
            "not found in the client package\n"
        } else {
            "the browser client is not built: run scripts/build-client (or start with scripts/demo)\n"
        };
        (StatusCode::NOT_FOUND, body)
    };
    Router::new()
        .route_service("/", ServeFile::new(static_dir.join("index.html")))
        .route_service("/room", ServeFile::new(static_dir.join("room.html")))
        .route_service("/live", ServeFile::new(static_dir.join("live.html")))
        .route_service(
            "/vendor/electric-client.mjs",
            ServeFile::new(ELECTRIC_CLIENT),
        )
        .nest_service("/static", ServeDir::new(static_dir))
        .nest_service(
            "/pkg",
            ServeDir::new(pkg_dir).not_found_service(client_missing.into_service()),
        )
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .layer(CompressionLayer::new())
}
