//! The three adapters' public fronts are one: the same program, written once
//! below, compiles against `hubbub_tokio`, `hubbub_smol` and `hubbub_mio`
//! (every name with the same shape), and its echo runs on each.

macro_rules! same_program {
    ($name:ident, $rt:ident, $block_on:path) => {
        mod $name {
            use std::{sync::Arc, time::Duration};

            use $rt::{
                connect, connect_with, ClientConfig, ClientRequest, CloseCode, Closed, Config,
                DeflateConfig, Envelope, Error, Hub, HubHandle, HubServer, Message, ReadHalf,
                Response, Server, WebSocket, WriteHalf, DEFAULT_GRACE, LISTEN_BACKLOG,
            };

            /// Every front item, named with its shape.
            #[allow(dead_code)]
            fn shapes() {
                let _: Option<(ReadHalf, WriteHalf, Closed, Error, HubHandle)> = None;
                let _: (Duration, u32, Option<DeflateConfig>) =
                    (DEFAULT_GRACE, LISTEN_BACKLOG, None);
                let _: Option<$rt::Client> = None;
                let _: Option<$rt::ClientBuilder> = None;
                let _ = $rt::shutdown_signal;
                let _ = $rt::serve_http;
                let _: Option<$rt::Settings> = None;
            }

            /// A hub echo server on this runtime, and a plain client of it.
            async fn echo_round_trip() -> Message {
                let hub = Hub::builder()
                    .on_message(|session, text| {
                        session.send_text(text).unwrap();
                    })
                    .build();
                let server = HubServer::bind("127.0.0.1:0", hub, Arc::new(Config::default()))
                    .await
                    .unwrap();
                let handle = server.start().unwrap();
                let url = format!("ws://{}/", handle.local_addr());
                let (mut ws, response): (WebSocket, Response) = connect(&url).await.unwrap();
                assert_eq!(response.status(), 101);
                let request = ClientRequest::from_url(&url).unwrap();
                let (other, _) = connect_with(request, &ClientConfig::default())
                    .await
                    .unwrap();
                assert!(other.is_open());
                ws.send(Envelope::new("hi", 1.into()).to_json())
                    .await
                    .unwrap();
                let echoed = ws.recv().await.unwrap().unwrap();
                ws.close(CloseCode::NORMAL, "bye").await.unwrap();
                handle.shutdown(DEFAULT_GRACE).await;
                let _ = Server::new(Config::default()); // a plain server too
                echoed
            }

            #[test]
            fn the_same_program_runs() {
                let echoed = $block_on(echo_round_trip());
                assert_eq!(echoed, Message::Text(r#"{"type":"hi","payload":1}"#.into()));
            }
        }
    };
}

fn tokio_block_on<F: std::future::Future>(future: F) -> F::Output {
    let mut runtime = tokio::runtime::Builder::new_current_thread();
    runtime.enable_all().build().unwrap().block_on(future)
}

fn mio_block_on<F: std::future::Future>(future: F) -> F::Output {
    hubbub_mio::block_on(future)
}

same_program!(on_tokio, hubbub_tokio, crate::tokio_block_on);
same_program!(on_smol, hubbub_smol, smol::block_on);
same_program!(on_mio, hubbub_mio, crate::mio_block_on);
