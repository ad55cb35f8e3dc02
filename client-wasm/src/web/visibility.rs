//! The page's visibility: a `visibilitychange` listener on `document`, where there is one (not in
//! Node or workers), installed by `visibility.js`.
//!
//! Browsers throttle timers in hidden tabs, so a connection lost there may wait out a long backoff;
//! when the page is shown again the session reconnects at once
//! ([`Session::handle_visibility`](alight_protocol::client::Session::handle_visibility)).

use js_sys::Function;
use wasm_bindgen::prelude::*;

use super::Handler;

#[wasm_bindgen(module = "/src/web/visibility.js")]
extern "C" {
    /// Calls `listener(visible)` on every `visibilitychange`; returns the function that removes
    /// the listener, or `None` where there is no `document`. (An `Option`, which the glue
    /// converts: a plain `JsValue` would be imported from the snippet directly, a second import
    /// module that `scripts/minify-wasm-names.mjs` does not expect.)
    #[wasm_bindgen(js_name = watchVisibility)]
    fn watch_visibility(listener: &JsValue) -> Option<Function>;
}

/// A `visibilitychange` listener, removed on drop.
pub(crate) struct Visibility {
    unwatch: Function,
    // Kept alive for as long as the listener is installed.
    _listener: Handler,
}

impl Visibility {
    /// Calls `on_change(visible)` whenever the page is shown or hidden; `None` where there is no
    /// `document`.
    pub(crate) fn install(on_change: impl Fn(bool) + 'static) -> Option<Visibility> {
        let listener = Handler::new(move |visible: JsValue| on_change(visible.is_truthy()));
        let unwatch = watch_visibility(listener.as_ref())?;
        Some(Visibility {
            unwatch,
            _listener: listener,
        })
    }
}

impl Drop for Visibility {
    fn drop(&mut self) {
        // Removing a listener does not throw; nothing to do about it if it did.
        let _ = self.unwatch.call0(&JsValue::UNDEFINED);
    }
}

impl std::fmt::Debug for Visibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Visibility").finish_non_exhaustive()
    }
}
