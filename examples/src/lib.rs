//! Runnable hubbub programs (see `src/bin/`), and the little they share.

use std::fmt;

/// The runtimes a program can run on (`--runtime`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Runtime {
    /// `hubbub-tokio`.
    Tokio,
    /// `hubbub-smol`.
    Smol,
    /// `hubbub-mio`.
    Mio,
}

impl Runtime {
    /// Parse a `--runtime` value.
    pub fn parse(name: &str) -> Result<Runtime, String> {
        match name {
            "tokio" => Ok(Runtime::Tokio),
            "smol" => Ok(Runtime::Smol),
            "mio" => Ok(Runtime::Mio),
            other => Err(format!(
                "unknown runtime {other:?}: expected tokio, smol or mio"
            )),
        }
    }

    /// Whether this build can run on it.
    pub fn is_available(self) -> bool {
        self == Runtime::Tokio
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Runtime::Tokio => "tokio",
            Runtime::Smol => "smol",
            Runtime::Mio => "mio",
        })
    }
}

/// Wait for SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
