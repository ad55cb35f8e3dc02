//! `shape:<table>` over a real socket: what each subscriber of the topic receives, and what the
//! server does to deliver it.

mod common;

use alight_tests::client::TestClient;
use alight_tests::shapes::ShapeServer;
use common::{TestResult, metric};

type Error = Box<dyn std::error::Error + Send + Sync>;
use serde_json::{Value, json};

/// Connects as `user` and joins `shape:items` with its own rows; the shape's handle.
async fn join_as(server: &ShapeServer, user: &str) -> Result<(TestClient, String), Error> {
    let url = format!("{}/websocket?vsn=2.0.0&token={user}", server.ws_url());
    let mut client = TestClient::connect(&url, None).await?;
    client
        .send_text(r#"["1","1","shape:items","phx_join",{}]"#)
        .await?;
    let reply: Value = serde_json::from_str(&client.recv_text().await?)?;
    assert_eq!(reply[3], "phx_reply", "{reply}");
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    assert_eq!(reply[4]["response"]["more"], false, "{reply}");
    let handle = reply[4]["response"]["handle"]
        .as_str()
        .ok_or("no handle in the join reply")?
        .to_owned();
    Ok((client, handle))
}

/// The next frame, which must be `changes` of shape `handle`; the titles of its rows.
async fn changes(client: &mut TestClient, handle: &str) -> Result<Vec<Value>, Error> {
    let frame: Value = serde_json::from_str(&client.recv_text().await?)?;
    assert_eq!(frame[2], "shape:items", "{frame}");
    assert_eq!(frame[3], "changes", "{frame}");
    assert_eq!(frame[4]["handle"], handle, "{frame}");
    let messages = frame[4]["messages"].as_array().ok_or("no messages")?;
    Ok(messages
        .iter()
        .map(|m| m["value"]["title"].clone())
        .collect())
}

fn deliveries(server: &ShapeServer) -> f64 {
    metric(&server.alight.metrics_text(), "alight_deliveries_total").unwrap_or(f64::NAN)
}

// A current-thread runtime (tokio::test's): the sender's fan-out, which counts its deliveries,
// completes before any socket writes what it queued.
#[tokio::test]
async fn each_user_on_the_topic_gets_only_their_shape_through_one_queue() -> TestResult {
    let server = ShapeServer::start().await?;
    let (mut alice, alice_shape) = join_as(&server, "alice").await?;
    let (mut bob, bob_shape) = join_as(&server, "bob").await?;
    assert_ne!(alice_shape, bob_shape);
    let registry = server.alight.registry();
    assert_eq!(registry.subscriber_count("shape:items"), 2);
    assert_eq!(
        registry.subscriber_count(&format!("shape:items\u{1f}{alice_shape}")),
        1
    );
    assert_eq!(
        registry.subscriber_count(&format!("shape:items\u{1f}{bob_shape}")),
        1
    );

    // Alice's row reaches her socket's queue only, not every socket on the topic.
    let before = deliveries(&server);
    server
        .exec("INSERT INTO items (owner, title) VALUES ('alice', 'a1')")
        .await?;
    assert_eq!(changes(&mut alice, &alice_shape).await?, [json!("a1")]);
    assert_eq!(deliveries(&server) - before, 1.0);

    // Bob's first changes are his own.
    server
        .exec("INSERT INTO items (owner, title) VALUES ('bob', 'b1')")
        .await?;
    assert_eq!(changes(&mut bob, &bob_shape).await?, [json!("b1")]);
    assert_eq!(deliveries(&server) - before, 2.0);

    // Leaving drops the shape's route with the topic.
    client_leave(&mut alice).await?;
    assert_eq!(
        registry.subscriber_count(&format!("shape:items\u{1f}{alice_shape}")),
        0
    );
    assert_eq!(registry.subscriber_count("shape:items"), 1);
    Ok(())
}

async fn client_leave(client: &mut TestClient) -> TestResult {
    client
        .send_text(r#"["1","2","shape:items","phx_leave",{}]"#)
        .await?;
    let reply: Value = serde_json::from_str(&client.recv_text().await?)?;
    assert_eq!(reply[4]["status"], "ok", "{reply}");
    Ok(())
}
