//! Alight server (in progress).
