//! Runnable hubbub programs (see `src/bin/`), and the little they share:
//! command-line parsing with the common `--runtime` flag, the `listening`
//! line, the exit codes, the wait for SIGTERM or Ctrl-C, TLS from the
//! settings (reloaded on SIGHUP), and the small bits of the demo protocols.
//!
//! Exit codes of every program: 0 after a clean shutdown, 2 for a usage or
//! configuration error (or a runtime this build does not have yet), 1 when
//! serving failed.
//!
//! Every program's body is written once, generic over [`Rt`] (an async
//! runtime hubbub has an adapter for), as a [`Main`]; [`Program::run`] is the
//! one place that maps `--runtime` to a runtime.

use std::{
    collections::{HashMap, HashSet},
    error::Error,
    fmt,
    future::Future,
    io,
    pin::Pin,
    process::ExitCode,
    time::Duration,
};

use hubbub_mio::Mio;
use hubbub_smol::Smol;
use hubbub_tokio::Tokio;

pub mod echo;
pub mod log;
pub mod protocol;
pub mod tls;

/// How long a server waits for its sessions to close after SIGTERM.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

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

/// Which options a program takes, besides `--runtime` and `--help`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Spec {
    /// Options followed by a value (`--port 9001` or `--port=9001`).
    pub values: &'static [&'static str],
    /// Options without a value (`--broadcast`).
    pub switches: &'static [&'static str],
}

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// `--runtime` (default `tokio`).
    pub runtime: Runtime,
    /// The arguments that are not options, in order. Everything after `--`
    /// is positional.
    pub positional: Vec<String>,
    values: HashMap<&'static str, String>,
    switches: HashSet<&'static str>,
}

/// Why a command line was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgsError {
    /// `-h` or `--help`.
    Help,
    /// A mistake, explained.
    Invalid(String),
}

impl Options {
    /// Parse `args` (without the program name) against `spec`.
    pub fn parse(args: impl IntoIterator<Item = String>, spec: Spec) -> Result<Options, ArgsError> {
        let mut options = Options {
            runtime: Runtime::Tokio,
            positional: Vec::new(),
            values: HashMap::new(),
            switches: HashSet::new(),
        };
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--" {
                options.positional.extend(args.by_ref());
                break;
            }
            if arg == "-h" || arg == "--help" {
                return Err(ArgsError::Help);
            }
            if !arg.starts_with("--") {
                options.positional.push(arg);
                continue;
            }
            let (flag, inline) = match arg.split_once('=') {
                Some((flag, value)) => (flag, Some(value.to_owned())),
                None => (arg.as_str(), None),
            };
            let takes_value = flag == "--runtime" || spec.values.contains(&flag);
            if takes_value {
                let value = inline
                    .or_else(|| args.next())
                    .ok_or_else(|| ArgsError::Invalid(format!("{flag} needs a value")))?;
                if flag == "--runtime" {
                    options.runtime = Runtime::parse(&value).map_err(ArgsError::Invalid)?;
                } else if let Some(&name) = spec.values.iter().find(|&&v| v == flag) {
                    options.values.insert(name, value);
                }
            } else if let Some(&name) = spec.switches.iter().find(|&&s| s == flag) {
                if inline.is_some() {
                    return Err(ArgsError::Invalid(format!("{flag} takes no value")));
                }
                options.switches.insert(name);
            } else {
                return Err(ArgsError::Invalid(format!("unknown argument {arg:?}")));
            }
        }
        Ok(options)
    }

    /// The value given to option `name`, if any.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// The value of option `name` parsed as `T`; `what` describes a valid
    /// value for the error message.
    pub fn parsed<T: std::str::FromStr>(
        &self,
        name: &str,
        what: &str,
    ) -> Result<Option<T>, String> {
        self.value(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| format!("invalid {name} {v:?}: expected {what}"))
            })
            .transpose()
    }

    /// Whether switch `name` was given.
    pub fn switch(&self, name: &str) -> bool {
        self.switches.contains(name)
    }
}

/// A program's name and usage line, and what every program does the same
/// way: parse the command line, refuse runtimes not built yet, run on the
/// chosen runtime ([`Program::run`]), report errors with the right exit code.
#[derive(Debug, Clone, Copy)]
pub struct Program {
    /// The binary's name, the prefix of its messages.
    pub name: &'static str,
    /// One usage line.
    pub usage: &'static str,
}

impl Program {
    /// Parse the process's arguments. On `--help` the usage goes to stdout
    /// and the exit code is 0; on a mistake, or a runtime this build cannot
    /// run on, an explanation goes to stderr and the exit code is 2.
    pub fn options(&self, spec: Spec) -> Result<Options, ExitCode> {
        let options = match Options::parse(std::env::args().skip(1), spec) {
            Ok(options) => options,
            Err(ArgsError::Help) => {
                println!("usage: {}", self.usage);
                return Err(ExitCode::SUCCESS);
            }
            Err(ArgsError::Invalid(message)) => return Err(self.usage_error(message)),
        };
        Ok(options)
    }

    /// Print `message` and the usage to stderr; exit code 2.
    pub fn usage_error(&self, message: impl fmt::Display) -> ExitCode {
        tracing::error!("{}: {message}", self.name);
        tracing::error!("usage: {}", self.usage);
        ExitCode::from(2)
    }

    /// For programs configured only by settings: accept just the common
    /// flags, then read the settings (`.env` and environment). Any error is
    /// printed and gives exit code 2.
    pub fn settings(&self) -> Result<(Runtime, hubbub_http::Settings), ExitCode> {
        let options = self.options(Spec::default())?;
        if let Some(extra) = options.positional.first() {
            return Err(self.usage_error(format_args!("unexpected argument {extra:?}")));
        }
        hubbub_http::Settings::from_env()
            .map(|settings| (options.runtime, settings))
            .map_err(|error| self.exit(2, error))
    }

    /// The TLS of a hub program from `settings` (`TLS_CERT_PATH`,
    /// `TLS_KEY_PATH`): `None` when unset; otherwise the acceptor, its
    /// certificate reloaded on SIGHUP ([`tls::reload_on_sighup`]). A
    /// missing or bad file is printed, naming it, with exit code 2 (a
    /// SIGHUP handler that cannot be installed: exit code 1).
    pub fn tls(
        &self,
        settings: &hubbub_http::Settings,
    ) -> Result<Option<hubbub_ws::tls::TlsAcceptor>, ExitCode> {
        let Some(acceptor) = tls::acceptor(settings).map_err(|error| self.exit(2, error))? else {
            return Ok(None);
        };
        tls::reload_on_sighup(self.name, acceptor.clone())
            .map_err(|error| self.exit(1, format_args!("SIGHUP handler: {error}")))?;
        Ok(Some(acceptor))
    }

    /// Print `message` to stderr; exit code `code`.
    pub fn exit(&self, code: u8, message: impl fmt::Display) -> ExitCode {
        tracing::error!("{}: {message}", self.name);
        ExitCode::from(code)
    }

    /// Catch SIGTERM and Ctrl-C (the runtime's `shutdown_signal`, which
    /// installs its handlers at once, so a signal sent right after the line
    /// below shuts down cleanly), then print the line that tells scripts the
    /// sockets are bound: `NAME: listening on WHERE (runtime R)`. Returns
    /// the future of the signal.
    pub fn listening<R: Rt>(&self, place: impl fmt::Display) -> io::Result<Shutdown> {
        let shutdown = Box::pin(R::shutdown_signal());
        tracing::info!("{}: listening on {place} (runtime {})", self.name, R::NAME);
        Ok(shutdown)
    }

    /// Run `main` to completion on `runtime`: the one place where
    /// `--runtime` picks an adapter. An error is printed and gives exit
    /// code 1; a runtime this build does not have gives exit code 2.
    pub fn run<M: Main>(&self, runtime: Runtime, main: M) -> ExitCode {
        match runtime {
            Runtime::Tokio => self.run_on::<Tokio, M>(main),
            Runtime::Smol => self.run_on::<Smol, M>(main),
            Runtime::Mio => self.run_on::<Mio, M>(main),
        }
    }

    fn run_on<R: Rt, M: Main>(&self, main: M) -> ExitCode {
        match R::block_on(main.main::<R>()) {
            Ok(Ok(())) => ExitCode::SUCCESS,
            Ok(Err(error)) => self.exit(1, error),
            Err(error) => self.exit(1, error),
        }
    }
}

/// Run `work` until `shutdown` resolves; `None` if it was cut short.
pub async fn until<F: Future>(work: F, shutdown: Shutdown) -> Option<F::Output> {
    match futures_util::future::select(std::pin::pin!(work), shutdown).await {
        futures_util::future::Either::Left((output, _)) => Some(output),
        futures_util::future::Either::Right(((), _)) => None,
    }
}

/// A program's body, written once for every async runtime.
pub trait Main {
    /// Run the program on runtime `R`.
    fn main<R: Rt>(self) -> impl Future<Output = Result<(), Box<dyn Error>>>;
}

/// An async runtime the programs run on: hubbub's [`Runtime`] plus what a
/// `main` needs (a name, and running a future to completion).
///
/// [`Runtime`]: hubbub_ws::Runtime
pub trait Rt: hubbub_ws::Runtime + hubbub_ws::Signals {
    /// The `--runtime` name.
    const NAME: &'static str;
    /// Run `future` to completion on this thread (tasks it spawns run on
    /// the runtime's executor).
    fn block_on<F: Future>(future: F) -> io::Result<F::Output>;
}

impl Rt for Tokio {
    const NAME: &'static str = "tokio";

    /// A current-thread tokio runtime; a multi-thread one when
    /// `TOKIO_WORKER_THREADS` (tokio's own setting of its worker count)
    /// asks for more than one worker.
    fn block_on<F: Future>(future: F) -> io::Result<F::Output> {
        let workers = std::env::var("TOKIO_WORKER_THREADS")
            .ok()
            .and_then(|n| n.parse::<usize>().ok());
        let mut builder = match workers {
            Some(n) if n > 1 => tokio::runtime::Builder::new_multi_thread(),
            _ => tokio::runtime::Builder::new_current_thread(),
        };
        Ok(builder.enable_all().build()?.block_on(future))
    }
}

impl Rt for Smol {
    const NAME: &'static str = "smol";

    /// `hubbub_smol::block_on` (this thread leaves the reactor to the
    /// executor's); spawned tasks run on smol's global executor
    /// (`SMOL_THREADS`, one thread by default).
    fn block_on<F: Future>(future: F) -> io::Result<F::Output> {
        Ok(hubbub_smol::block_on(future))
    }
}

impl Rt for Mio {
    const NAME: &'static str = "mio";

    /// With one loop (`HUBBUB_MIO_THREADS`, one per CPU by default), the
    /// whole program on this thread (`hubbub_mio::block_on_local`, as the
    /// tokio programs run on a current-thread runtime); with more,
    /// `hubbub_mio::block_on`, spawned tasks spread over the default loops.
    fn block_on<F: Future>(future: F) -> io::Result<F::Output> {
        match hubbub_mio::default_loops() {
            1 => hubbub_mio::block_on_local(future),
            _ => Ok(hubbub_mio::block_on(future)),
        }
    }
}

/// SIGTERM or Ctrl-C (SIGINT), as a future.
pub type Shutdown = Pin<Box<dyn Future<Output = ()> + Send>>;

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: Spec = Spec {
        values: &["--port", "--max-message"],
        switches: &["--broadcast"],
    };

    fn parse(line: &str) -> Result<Options, ArgsError> {
        Options::parse(line.split_whitespace().map(str::to_owned), SPEC)
    }

    #[test]
    fn options_values_switches_and_positional() {
        let o = parse("--port 9001 --broadcast --max-message=10 a -- --b").unwrap();
        assert_eq!(o.runtime, Runtime::Tokio);
        assert_eq!(o.value("--port"), Some("9001"));
        assert_eq!(o.parsed::<u16>("--port", "a port"), Ok(Some(9001)));
        assert_eq!(o.parsed::<usize>("--max-message", "bytes"), Ok(Some(10)));
        assert!(o.switch("--broadcast"));
        assert_eq!(o.positional, ["a", "--b"]);
        let o = parse("--runtime=mio x").unwrap();
        assert_eq!(
            (o.runtime, o.positional.as_slice()),
            (Runtime::Mio, &["x".to_owned()][..])
        );
    }

    #[test]
    fn mistakes_are_explained() {
        let err = |line| match parse(line) {
            Err(ArgsError::Invalid(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(err("--port"), "--port needs a value");
        assert_eq!(err("--nope"), "unknown argument \"--nope\"");
        assert_eq!(err("--broadcast=1"), "--broadcast takes no value");
        assert!(err("--runtime async-std").contains("unknown runtime \"async-std\""));
        assert_eq!(parse("--help").unwrap_err(), ArgsError::Help);
        let o = parse("--port x").unwrap();
        assert_eq!(
            o.parsed::<u16>("--port", "a port"),
            Err("invalid --port \"x\": expected a port".into())
        );
    }
}

/// The project README's examples, compiled (and the sans-IO one run) as doc
/// tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
