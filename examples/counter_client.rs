//! Run with: `cargo run -p alight-examples --example counter_client [name]`, with the
//! `counter_server` example running.
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
    let socket = native::Builder::new("ws://127.0.0.1:4000/socket").build();
    socket.connect();

    let counter = socket.typed_channel::<CounterSchema>("counter:lobby")?;
    // Made before joining, so they see what follows the join.
    let presence = counter.presence();
    let mut events = counter.events();
    tokio::spawn(show_presence(presence));

    let total = counter.join(&JoinCounter { name: name.clone() }).await?;
    println!(
        "joined counter:lobby as {name}; the counter is at {}",
        total.value
    );

    for _ in 0..100 {
        let total = counter.push(&CounterIn::Add { by: 1 }).await?;
        print!("\r{}", total.value);
    }
    println!();

    // Our own pushes come back as broadcasts, with everyone else's.
    let mut seen = 0;
    while let Some(event) = events.next().await {
        match event {
            Ok(CounterOut::Changed { value, by }) => {
                seen += 1;
                if by != name {
                    println!("{by} set the counter to {value}");
                }
            }
            Err(error) => eprintln!("{error}"),
        }
        if seen == 100 {
            break;
        }
    }
    counter.leave().await?;
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
