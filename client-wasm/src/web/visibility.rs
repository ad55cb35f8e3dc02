//! The page's visibility: a `visibilitychange` listener on `document`, where there is one (not in
//! Node or workers).
//!
//! Browsers throttle timers in hidden tabs, so a connection lost there may wait out a long backoff;
//! when the page is shown again the session reconnects at once
//! ([`Session::handle_visibility`](alight_protocol::client::Session::handle_visibility)).

use wasm_bindgen::prelude::*;
use web_sys::Document;

use super::Handler;

/// A `visibilitychange` listener, removed on drop.
pub(crate) struct Visibility {
    document: Document,
    listener: Handler,
}

impl Visibility {
    /// Calls `on_change(visible)` whenever the page is shown or hidden; `None` where there is no
    /// `document`.
    pub(crate) fn install(on_change: impl Fn(bool) + 'static) -> Option<Visibility> {
        let document: Document = super::global("document").dyn_into().ok()?;
        let listener = {
            let document = document.clone();
            Handler::new(move |_| on_change(!document.hidden()))
        };
        document
            .add_event_listener_with_callback("visibilitychange", listener.as_ref().unchecked_ref())
            .ok()?;
        Some(Visibility { document, listener })
    }
}

impl Drop for Visibility {
    fn drop(&mut self) {
        let _ = self.document.remove_event_listener_with_callback(
            "visibilitychange",
            self.listener.as_ref().unchecked_ref(),
        );
    }
}

impl std::fmt::Debug for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visibility").finish_non_exhaustive()
    }
}
