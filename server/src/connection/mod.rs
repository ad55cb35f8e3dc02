//! One WebSocket connection: a task that reads frames, runs its channels, and writes what they
//! and the PubSub send.
//!
//! Everything about a socket happens on its own task, in order: decoding a frame, running the
//! channel callback it addresses, and writing the replies and pushes that result. Broadcasts
//! arrive through the bounded outbound queue the registry fills; the task drains it in batches,
//! writing and flushing once per batch.
//!
//! - `driver`: the socket side: the select loop, reads, encoding, writes, the close handshake;
//! - `runtime`: the channel side: the channels the socket joined (`joined`) and their callbacks;
//!   it never touches the socket;
//! - `poll_when_woken`: the socket, read only when it has something;
//! - `alarm`: the shutdown and overflow signals, polled only once they fired.
//!
//! # Output
//! What the client is sent takes one path, one name per stage:
//! 1. `queued` (runtime): what the current step sends, in order: replies, pushes, this socket's
//!    copies of broadcasts, `presence_state`; broadcasts from the registry join here too;
//! 2. `encoded` (driver): the step's messages, encoded at its end; a broadcast from the registry
//!    that needs no channel callback comes here directly, as its shared bytes, unless something
//!    `queued` is ahead of it (the direct path: no runtime call, no encode stage);
//! 3. waiting ([`Backpressure`](crate::backpressure::Backpressure)): the output of a step that
//!    broadcast, kept until the fan-out catches up; later output waits behind it;
//! 4. written (driver): fed to the socket and flushed once per step.
//!
//! The task ends when the client goes away, sends a frame that does not decode, stays silent past
//! the idle timeout, overflows its queue, is disconnected by socket id, or the server shuts down;
//! each ends with the close code listed in [`close_code`](crate::close_code).

mod alarm;
mod driver;
mod joined;
mod poll_when_woken;
mod runtime;

pub(crate) use driver::run;
