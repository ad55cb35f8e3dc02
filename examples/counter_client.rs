//! Run with: `cargo run -p alight-examples --example counter_client [name]`, with the
//! `counter_server` example running (`ALIGHT_URL` names another server than
//! ws://127.0.0.1:4000/socket).
//!
//! A native Rust client of the counter app: joins `counter:lobby` with the shared schema's types,
//! shows who is there through a presence view, sends 100 typed pushes and reads the typed
//! broadcasts they cause. Every type here comes from `counter_schema`, the crate the server uses:
//! pushing a server event, or reading a reply as the wrong type, does not compile.

use alight_client::native;
use alight_client::rust_api::PresenceView;
use alight_protocol::presence::PresenceEvent;
use counter_schema::{CounterIn, CounterOut, CounterSchema, JoinCounter};
use futures_util::StreamExt;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "rusty".to_owned());
    let url =
        std::env::var("ALIGHT_URL").unwrap_or_else(|_| "ws://127.0.0.1:4000/socket".to_owned());
    let socket = native::Builder::new(url).build();
    socket.connect();

    let counter = socket.typed_channel::<CounterSchema>("counter:lobby")?;
    // Made before joining, so they see what follows the join.
    let mut presence = counter.presence();
    let mut events = counter.events();

    let total = counter.join(&JoinCounter { name: name.clone() }).await?;
    println!(
        "joined counter:lobby as {name}; the counter is at {}",
        total.value
    );

    // Our own entry reaches the list with the topic's next presence diff.
    while !presence.keys().contains(&name.as_str()) {
        match presence.next().await {
            Some(Ok(_)) => {}
            Some(Err(error)) => eprintln!("presence: {error}"),
            None => return Err("the connection closed before we were online".into()),
        }
    }
    println!("online: {}", presence.keys().join(", "));
    tokio::spawn(show_presence(presence));

    for _ in 0..100 {
        let total = counter.push(&CounterIn::Add { by: 1 }).await?;
        println!("pushed: the counter is at {}", total.value);
    }

    // Our own pushes come back as broadcasts, with everyone else's.
    let mut ours = 0;
    while ours < 100 {
        match events.next().await {
            Some(Ok(CounterOut::Changed { by, .. })) if by == name => ours += 1,
            Some(Ok(CounterOut::Changed { value, by })) => {
                println!("{by} set the counter to {value}")
            }
            Some(Err(error)) => eprintln!("{error}"),
            None => return Err("the connection closed".into()),
        }
    }
    counter.leave().await?;
    println!("left");
    Ok(())
}

/// Prints who arrives and leaves, as phoenix.js's `presence.onJoin` / `onLeave` would.
async fn show_presence(mut presence: PresenceView) {
    while let Some(event) = presence.next().await {
        match event {
            Ok(PresenceEvent::Join {
                key, current: None, ..
            }) => println!("{key} is here"),
            Ok(PresenceEvent::Leave { key, current, .. }) if current.metas.is_empty() => {
                println!("{key} left")
            }
            Ok(PresenceEvent::Sync) => println!("online: {}", presence.keys().join(", ")),
            Ok(_) => {}
            Err(error) => eprintln!("presence: {error}"),
        }
    }
}
