//! An upstream that closes a kept-alive connection as a request arrives on
//! it (its keep-alive timeout racing the gateway's reuse, as actix-web's
//! 5 s does): a `GET` is sent again on a new connection, a `POST` is not
//! (it may have run) and answers 502.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::common::echo::route;
use crate::common::{Stack, send};

/// An upstream answering the first request of each connection (kept
/// alive) and closing the connection on the second without an answer;
/// its URL, and how many requests it read.
async fn closing_upstream() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let requests = Arc::new(AtomicUsize::new(0));
    let counted = requests.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                for answered in [true, false] {
                    // Bodiless requests (GET, or a POST with an empty
                    // body): a request ends with its head.
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    counted.fetch_add(1, Ordering::SeqCst);
                    if answered {
                        let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
                        socket.write_all(answer.as_bytes()).await.unwrap();
                    }
                }
                // Dropped: closed without answering the second request.
            });
        }
    });
    (url, requests)
}

/// The gateway with one worker (so the second request reuses the first's
/// connection) and the closing upstream behind `/closing`.
async fn stack() -> (Stack, Arc<AtomicUsize>) {
    let (url, requests) = closing_upstream().await;
    let stack = Stack::start_with(move |settings| {
        settings.server.workers = 1;
        settings.upstreams.insert("closing".into(), url.into());
        settings
            .extra_routes
            .push(route("/closing", "closing", "/", false));
    })
    .await;
    (stack, requests)
}

#[tokio::test]
async fn a_get_whose_kept_alive_connection_closes_unanswered_is_sent_again() {
    let (stack, requests) = stack().await;
    for _ in 0..3 {
        let response = send(stack.get("/closing")).await;
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
    }
    // The first on a new connection; each later one read on the kept-alive
    // connection, left unanswered, and sent again on a new one.
    assert_eq!(requests.load(Ordering::SeqCst), 5);
}

#[tokio::test]
async fn a_post_whose_kept_alive_connection_closes_unanswered_is_not_sent_again() {
    let (stack, requests) = stack().await;
    assert_eq!(send(stack.get("/closing")).await.status(), 200);
    let response = send(stack.post("/closing")).await;
    assert_eq!(response.status(), 502);
    assert_eq!(requests.load(Ordering::SeqCst), 2, "the POST arrived once");
}
