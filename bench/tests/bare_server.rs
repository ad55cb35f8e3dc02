//! The bare baseline's contract, over real sockets: what each frame gets back and in which order,
//! and what happens to a frame that does not decode and to a subscriber that stops reading.

use std::net::SocketAddr;
use std::time::Duration;

use alight_bench::servers;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use tokio_util::sync::CancellationToken;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;
type Error = Box<dyn std::error::Error + Send + Sync>;

/// Longest wait for one expected message; a bound on a broken server, not a pause.
const STEP: Duration = Duration::from_secs(10);

async fn serve() -> Result<(SocketAddr, CancellationToken), Error> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let stop = CancellationToken::new();
    tokio::spawn(servers::bare::serve(
        listener,
        stop.clone().cancelled_owned(),
    ));
    Ok((addr, stop))
}

async fn connect(addr: SocketAddr) -> Result<Socket, Error> {
    let url = format!("ws://{addr}/socket/websocket?vsn=2.0.0");
    Ok(tokio_tungstenite::connect_async(url).await?.0)
}

async fn send(socket: &mut Socket, text: &str) -> Result<(), Error> {
    Ok(socket.send(Message::text(text)).await?)
}

async fn next(socket: &mut Socket) -> Result<Message, Error> {
    match tokio::time::timeout(STEP, socket.next()).await? {
        Some(message) => Ok(message?),
        None => Err("the server closed the connection".into()),
    }
}

async fn text(socket: &mut Socket) -> Result<String, Error> {
    match next(socket).await? {
        Message::Text(text) => Ok(text.as_str().to_owned()),
        other => Err(format!("expected a text message, got {other:?}").into()),
    }
}

#[tokio::test]
async fn each_frame_gets_its_answer_in_order() -> Result<(), Error> {
    let (addr, stop) = serve().await?;
    let mut a = connect(addr).await?;
    let mut b = connect(addr).await?;

    send(&mut a, r#"["1","1","room:a","phx_join",{}]"#).await?;
    assert_eq!(
        text(&mut a).await?,
        r#"["1","1","room:a","phx_reply",{"status":"ok","response":{}}]"#
    );
    send(&mut b, r#"["5","5","room\u003aa","phx_join",{}]"#).await?;
    assert_eq!(
        text(&mut b).await?,
        r#"["5","5","room\u003aa","phx_reply",{"status":"ok","response":{}}]"#
    );

    // The sender's own copy comes before its reply; the other member (joined under an escaped
    // spelling of the same topic) gets it too.
    send(&mut a, r#"["1","2","room:a","shout",{"x":[1,"é"]}]"#).await?;
    assert_eq!(
        text(&mut a).await?,
        r#"[null,null,"room:a","shout",{"x":[1,"é"]}]"#
    );
    assert_eq!(
        text(&mut a).await?,
        r#"["1","2","room:a","phx_reply",{"status":"ok","response":{}}]"#
    );
    assert_eq!(
        text(&mut b).await?,
        r#"[null,null,"room:a","shout",{"x":[1,"é"]}]"#
    );

    send(&mut a, r#"["1","3","room:a","ping",{"t":7}]"#).await?;
    send(&mut a, r#"["1","4","room:a","dance",{}]"#).await?;
    send(&mut a, r#"["1","5","room:b","ping",{}]"#).await?;
    send(&mut a, r#"[null,"6","phoenix","heartbeat",{}]"#).await?;
    send(&mut a, r#"["1","7","room:a","phx_leave",{}]"#).await?;
    for expected in [
        r#"["1","3","room:a","phx_reply",{"status":"ok","response":{"t":7}}]"#,
        r#"["1","4","room:a","phx_reply",{"status":"error","response":{"reason":"unknown event"}}]"#,
        r#"["1","5","room:b","phx_reply",{"status":"error","response":{"reason":"unmatched topic"}}]"#,
        r#"[null,"6","phoenix","phx_reply",{"status":"ok","response":{}}]"#,
        r#"["1","7","room:a","phx_reply",{"status":"ok","response":{}}]"#,
        r#"["1","1","room:a","phx_close",{}]"#,
    ] {
        assert_eq!(text(&mut a).await?, expected);
    }

    // After the leave only `b` gets what is shouted in the room.
    send(&mut b, r#"["5","6","room:a","shout",1]"#).await?;
    assert_eq!(text(&mut b).await?, r#"[null,null,"room:a","shout",1]"#);
    send(&mut a, r#"["1","8","room:a","ping",{}]"#).await?;
    assert!(text(&mut a).await?.contains("unmatched topic"));
    stop.cancel();
    Ok(())
}

#[tokio::test]
async fn a_frame_that_does_not_decode_closes_the_socket_with_1007() -> Result<(), Error> {
    let (addr, stop) = serve().await?;
    let mut socket = connect(addr).await?;
    send(&mut socket, r#"["1","1","room:a","phx_join",{]"#).await?;
    match next(&mut socket).await? {
        Message::Close(Some(close)) => assert_eq!(close.code, CloseCode::from(1007)),
        other => return Err(format!("expected a close frame, got {other:?}").into()),
    }
    stop.cancel();
    Ok(())
}

/// A subscriber that stops reading is disconnected once its queue overflows; it does not hold
/// the publisher back for good, and a subscriber that reads gets every shout.
#[tokio::test]
async fn a_subscriber_that_stops_reading_is_disconnected() -> Result<(), Error> {
    const SHOUTS: usize = 3_000;
    let (addr, stop) = serve().await?;
    let join = r#"["1","1","room:a","phx_join",{}]"#;
    let mut stalled = connect(addr).await?;
    send(&mut stalled, join).await?;
    text(&mut stalled).await?;
    let mut healthy = connect(addr).await?;
    send(&mut healthy, join).await?;
    text(&mut healthy).await?;
    let reader = tokio::spawn(async move {
        let mut shouts = 0;
        while shouts < SHOUTS {
            if text(&mut healthy).await?.contains(r#""shout""#) {
                shouts += 1;
            }
        }
        Ok::<usize, Error>(shouts)
    });

    let publisher = connect(addr).await?;
    let (mut publish, mut replies) = publisher.split();
    publish.send(Message::text(join)).await?;
    let payload = format!(r#"{{"p":"{}"}}"#, "x".repeat(8 * 1024));
    let sender = tokio::spawn(async move {
        for i in 0..SHOUTS {
            let shout = format!(r#"["1","{}","room:a","shout",{payload}]"#, i + 2);
            publish.send(Message::text(shout)).await?;
        }
        Ok::<_, Error>(publish)
    });
    // One join reply, then every shout's.
    let mut acked = 0;
    while acked < SHOUTS + 1 {
        match tokio::time::timeout(STEP, replies.next()).await? {
            Some(Ok(Message::Text(text))) if text.contains("phx_reply") => acked += 1,
            Some(Ok(_)) => {}
            Some(Err(err)) => return Err(err.into()),
            None => return Err("the publisher was disconnected".into()),
        }
    }
    drop(sender.await??);
    assert_eq!(reader.await??, SHOUTS);

    // The stalled subscriber now reads what reached it before the server let it go.
    let mut received = 0;
    loop {
        match tokio::time::timeout(STEP, stalled.next()).await? {
            Some(Ok(Message::Text(_))) => received += 1,
            Some(Ok(Message::Close(close))) => {
                if let Some(close) = close {
                    assert_eq!(close.code, CloseCode::from(1013));
                }
                break;
            }
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    assert!(received < SHOUTS, "got all {received} shouts");
    stop.cancel();
    Ok(())
}
