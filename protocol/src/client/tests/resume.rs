//! Resuming history channels through a [`Session`](crate::client::Session): `since` on rejoins,
//! duplicates dropped, [`Event::Recovered`].

use super::{Client, json, reply};
use crate::Payload;
use crate::client::Event;

const AT: &str = "0123456789ab";

fn broadcast(offset: u64, n: u64) -> String {
    format!(r#"[null,"{AT}-{offset}","history:a","n",{{"n":{n}}}]"#)
}

/// The numbers of the `n` messages among `events`, with their positions.
fn numbers(events: &[Event]) -> Vec<(String, Option<String>)> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Message {
                payload, position, ..
            } => Some((payload.as_json()?.to_owned(), position.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn a_history_channel_rejoins_with_since_and_drops_what_it_had() {
    let mut c = Client::quiet();
    c.open();
    let channel = c.session.channel("history:a", json(r#"{"a":1}"#));
    c.session.join(channel, None, c.now).expect("joins");
    assert_eq!(c.sent(), [r#"["3","3","history:a","phx_join",{"a":1}]"#]);
    c.recv(&reply(
        "3",
        "3",
        "history:a",
        "ok",
        &format!(r#"{{"position":"{AT}-0"}}"#),
    ));
    assert!(
        !c.events()
            .iter()
            .any(|e| matches!(e, Event::Recovered { .. })),
        "a fresh join"
    );
    c.recv(&broadcast(1, 1));
    c.recv(&broadcast(2, 2));
    assert_eq!(
        numbers(&c.events()),
        [
            (r#"{"n":1}"#.to_owned(), Some(format!("{AT}-1"))),
            (r#"{"n":2}"#.to_owned(), Some(format!("{AT}-2")))
        ]
    );
    assert_eq!(
        c.session.position(channel),
        Some(format!("{AT}-2").as_str())
    );

    c.reconnect();
    let sent = c.sent();
    assert_eq!(
        sent,
        [format!(
            r#"["4","4","history:a","phx_join",{{"a":1,"since":"{AT}-2"}}]"#
        )]
    );
    let response = format!(r#"{{"position":"{AT}-4","recovered":true}}"#);
    c.recv(&reply("4", "4", "history:a", "ok", &response));
    let events = c.events();
    assert!(events.contains(&Event::Recovered {
        channel,
        recovered: true
    }));
    for (offset, n) in [(2, 2), (3, 3), (4, 4)] {
        c.recv(&broadcast(offset, n));
    }
    let got: Vec<String> = numbers(&c.events()).into_iter().map(|(n, _)| n).collect();
    assert_eq!(got, [r#"{"n":3}"#, r#"{"n":4}"#], "2 was had already");
}

#[test]
fn an_unrecovered_rejoin_takes_the_new_position() {
    let mut c = Client::quiet();
    c.open();
    let channel = c.session.channel("history:a", Payload::empty());
    c.session.join(channel, None, c.now).expect("joins");
    c.recv(&reply(
        "3",
        "3",
        "history:a",
        "ok",
        &format!(r#"{{"position":"{AT}-7"}}"#),
    ));
    c.reconnect();
    c.drain();
    let lost = r#"{"position":"ffffffffffff-2","recovered":false}"#;
    c.recv(&reply("4", "4", "history:a", "ok", lost));
    assert!(c.events().contains(&Event::Recovered {
        channel,
        recovered: false
    }));
    assert_eq!(c.session.position(channel), Some("ffffffffffff-2"));
}

#[test]
fn a_channel_without_history_is_left_alone() {
    let mut c = Client::quiet();
    c.open();
    let channel = c.joined("room:a");
    c.recv(r#"[null,null,"room:a","n",{}]"#);
    assert_eq!(numbers(&c.events()).len(), 1);
    c.reconnect();
    assert_eq!(c.sent(), [r#"["4","4","room:a","phx_join",{}]"#]);
    assert_eq!(c.session.position(channel), None);
}
