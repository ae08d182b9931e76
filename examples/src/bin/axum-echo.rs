//! The echo server as an axum app, through `hubbub-axum`.
//!
//! ```text
//! axum-echo --port P [--deflate]
//! ```
//!
//! Binds 127.0.0.1:P and serves `GET /health` (200 `ok`), `GET /` (a page
//! whose script talks to the echo, for the browser test) and, at `/ws`, a
//! hubbub WebSocket that sends every text and binary message back to its
//! sender, same opcode, in order (messages and frames up to 16 MiB;
//! permessage-deflate with `--deflate`). Runs on one thread (tokio); exits
//! 0 on SIGTERM or Ctrl-C.

use std::{net::SocketAddr, process::ExitCode, sync::Arc};

use axum::{extract::State, response::Html, response::Response, routing::get, Router};
use hubbub_axum::{Config, DeflateConfig, WebSocketUpgrade};
use hubbub_examples::{
    echo::{conformance_config, echo},
    Program, Rt, Spec,
};
use hubbub_tokio::Tokio;

const PROGRAM: Program = Program {
    name: "axum-echo",
    usage: "axum-echo --port P [--deflate]",
};

/// The largest message and frame: 16 MiB.
const MAX_MESSAGE: usize = 16 << 20;

/// The page at `/`: it sends one message to `/ws` and shows the echo.
const PAGE: &str = r#"<!doctype html>
<meta charset="utf-8">
<title>hubbub axum echo</title>
<link rel="icon" href="data:,">
<p>echo: <output id="echo"></output></p>
<script>
  const ws = new WebSocket(`ws://${location.host}/ws`);
  ws.onopen = () => ws.send("hello from the browser");
  ws.onmessage = (event) => {
    document.getElementById("echo").textContent = event.data;
    ws.close(1000);
  };
  ws.onerror = () => (document.getElementById("echo").textContent = "error");
</script>
"#;

fn main() -> ExitCode {
    let _log = hubbub_examples::log::init();
    let options = match PROGRAM.options(Spec {
        values: &["--port"],
        switches: &["--deflate"],
    }) {
        Ok(options) => options,
        Err(code) => return code,
    };
    let parsed = (|| {
        if let Some(extra) = options.positional.first() {
            return Err(format!("unexpected argument {extra:?}"));
        }
        if options.runtime != hubbub_examples::Runtime::Tokio {
            return Err(format!(
                "axum runs on tokio: --runtime {} is not available",
                options.runtime
            ));
        }
        options
            .parsed::<u16>("--port", "a port number")?
            .ok_or_else(|| "--port is required".to_owned())
    })();
    let port = match parsed {
        Ok(port) => port,
        Err(message) => return PROGRAM.usage_error(message),
    };
    let deflate = options.switch("--deflate").then(DeflateConfig::default);
    let config = conformance_config(MAX_MESSAGE, deflate);
    match Tokio::block_on(serve(port, Arc::new(config))) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(error)) | Err(error) => PROGRAM.exit(1, error),
    }
}

async fn serve(port: u16, config: Arc<Config>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    let app = Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/health", get(|| async { "ok" }))
        .route("/ws", get(upgrade))
        .with_state(config);
    let shutdown = PROGRAM.listening::<Tokio>(listener.local_addr()?)?;
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await
}

async fn upgrade(State(config): State<Arc<Config>>, ws: WebSocketUpgrade) -> Response {
    ws.config(config).on_upgrade(echo)
}
