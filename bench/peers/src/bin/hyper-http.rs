//! hyper peer for the HTTP benchmark (`bench/http.sh`), written as hyper's
//! examples are (`examples/hello.rs` for the JSON route, `examples/send_file.rs`
//! for the file: `tokio::fs::read` per request): `GET /api/health` answers
//! `{"ok":true,"service":"websocket-chat"}`, `GET /<name>` a file of the
//! public directory, anything else 404.
//!
//! `hyper-http PORT PUBLIC_DIR`. Single-threaded (`current_thread`
//! runtime), TCP_NODELAY, 127.0.0.1 only.

use std::{convert::Infallible, net::SocketAddr, path::PathBuf, sync::Arc};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{
    body::Incoming, server::conn::http1, service::service_fn, Request, Response, StatusCode,
};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const HEALTH: &str = r#"{"ok":true,"service":"websocket-chat"}"#;

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(port), Some(public)) = (args.next().and_then(|p| p.parse::<u16>().ok()), args.next())
    else {
        eprintln!("usage: hyper-http PORT PUBLIC_DIR");
        std::process::exit(2);
    };
    peers::current_thread_runtime().block_on(serve(port, Arc::new(PathBuf::from(public))))
}

async fn serve(port: u16, public: Arc<PathBuf>) -> std::io::Result<()> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    println!("hyper-http: listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let public = public.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| route(req, public.clone()));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn route(
    req: Request<Incoming>,
    public: Arc<PathBuf>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path();
    if path == "/api/health" {
        return Ok(Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(HEALTH.as_bytes())))
            .unwrap());
    }
    let name = path.trim_start_matches('/');
    if name.is_empty() || name.contains("..") || name.contains('/') {
        return Ok(not_found());
    }
    match tokio::fs::read(public.join(name)).await {
        Ok(body) => Ok(Response::builder()
            .header("content-type", "text/html; charset=utf-8")
            .body(Full::new(Bytes::from(body)))
            .unwrap()),
        Err(_) => Ok(not_found()),
    }
}

fn not_found() -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::NOT_FOUND)
        .body(Full::new(Bytes::from_static(b"not found")))
        .unwrap()
}
