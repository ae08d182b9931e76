//! Static files from a directory: content types, `Cache-Control`, `ETag`
//! and `Last-Modified` with 304, an index file, an optional SPA fallback,
//! and a path check that never leaves the root.
//!
//! Files are read with blocking `std::fs` calls on the serving task; that
//! is fine for the assets of a web page. A file of up to [`FILE_CHUNK`]
//! (64 KiB) is read whole into the answer; a larger one is opened and
//! streamed: the server writes the head, then the file in chunks of
//! `FILE_CHUNK`, each read only once the peer has taken the one before, so
//! a client that asks for a large file and does not read holds one chunk
//! of the server's memory, not the file. A file over
//! [`StaticFiles::max_file_size`] (8 MiB by default) is refused with 403.
//! Only a missing file (or a path refused by the checks) is a 404; any
//! other I/O error is the server's: 503 with `Retry-After` when out of
//! file descriptors, otherwise 500, with a body naming the error.

use std::{
    fs::{self, File, Metadata},
    io::{self, Read},
    path::{Component, Path, PathBuf},
    sync::OnceLock,
    time::{SystemTime, UNIX_EPOCH},
};

use crate::{Request, Response, Settings};

/// Files up to this size are read whole; larger ones are streamed in
/// chunks of this size.
pub const FILE_CHUNK: usize = 64 << 10;

/// Where static files come from and how they are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticFiles {
    root: PathBuf,
    /// The canonical root, once it exists.
    canonical: OnceLock<PathBuf>,
    mount: String,
    index: String,
    cache_control: String,
    spa_fallback: bool,
    max_file_size: u64,
}

impl StaticFiles {
    /// Serve `root` at `/`, with `index.html` and `Cache-Control: no-cache`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        StaticFiles {
            root: root.into(),
            canonical: OnceLock::new(),
            mount: "/".into(),
            index: "index.html".into(),
            cache_control: "no-cache".into(),
            spa_fallback: false,
            max_file_size: 8 << 20,
        }
    }

    /// `PUBLIC_PATH`, `PUBLIC_MOUNT`, `PUBLIC_INDEX`,
    /// `PUBLIC_CACHE_CONTROL` and `PUBLIC_SPA_FALLBACK`.
    pub fn from_settings(settings: &Settings) -> Self {
        StaticFiles::new(&settings.public_path)
            .mount(&settings.public_mount)
            .index(&settings.public_index)
            .cache_control(&settings.public_cache_control)
            .spa_fallback(settings.public_spa_fallback)
    }

    /// The URL prefix (`/` by default; `/static` serves `/static/...`).
    pub fn mount(mut self, mount: &str) -> Self {
        let trimmed = mount.trim_end_matches('/');
        self.mount = if trimmed.starts_with('/') {
            trimmed.to_owned()
        } else {
            format!("/{trimmed}")
        };
        self
    }

    /// The file served for a directory.
    pub fn index(mut self, index: &str) -> Self {
        self.index = index.to_owned();
        self
    }

    /// The `Cache-Control` header of every file.
    pub fn cache_control(mut self, value: &str) -> Self {
        self.cache_control = value.to_owned();
        self
    }

    /// Serve the root's index for paths under the mount that match no file
    /// (for single-page apps that route in the browser).
    pub fn spa_fallback(mut self, on: bool) -> Self {
        self.spa_fallback = on;
        self
    }

    /// Files larger than this are refused (403).
    pub fn max_file_size(mut self, bytes: u64) -> Self {
        self.max_file_size = bytes;
        self
    }

    /// The largest file served.
    pub fn max_size(&self) -> u64 {
        self.max_file_size
    }

    /// The part of `path` under the mount, or `None` when it is elsewhere.
    fn relative<'p>(&self, path: &'p str) -> Option<&'p str> {
        if self.mount == "/" || self.mount.is_empty() {
            return Some(path);
        }
        let rest = path.strip_prefix(self.mount.as_str())?;
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// Answer a `GET`/`HEAD` for `request.path`, or `None` when the path is
    /// not under the mount (another route may want it).
    pub fn serve(&self, request: &Request) -> Option<Response> {
        let relative = self.relative(&request.path)?;
        let root = match self.canonical_root() {
            Ok(root) => root,
            Err(error) => return Some(io_error_response(&error)),
        };
        let found = match resolve(root, relative, &self.index) {
            Err(error) if self.spa_fallback && is_not_found(&error) => {
                resolve(root, "/", &self.index)
            }
            found => found,
        };
        Some(match found {
            Ok((file, meta)) => self.file(&file, &meta, request),
            Err(error) => io_error_response(&error),
        })
    }

    /// The root, canonicalized once (it may appear after start-up).
    fn canonical_root(&self) -> io::Result<&Path> {
        if let Some(root) = self.canonical.get() {
            return Ok(root);
        }
        let root = self.root.canonicalize()?;
        Ok(self.canonical.get_or_init(|| root))
    }

    fn file(&self, file: &Path, meta: &Metadata, request: &Request) -> Response {
        if meta.len() > self.max_file_size {
            return Response::error(403, "file too large to serve");
        }
        let modified = meta.modified().unwrap_or(UNIX_EPOCH);
        let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
        let etag = format!("\"{:x}-{:x}\"", meta.len(), since_epoch.as_nanos());
        let last_modified = httpdate::fmt_http_date(modified);
        let mut headers = vec![
            ("ETag".to_owned(), etag.clone()),
            ("Last-Modified".to_owned(), last_modified),
            ("Cache-Control".to_owned(), self.cache_control.clone()),
        ];
        if not_modified(request, &etag, modified) {
            let mut response = Response::new(304);
            response.headers = headers;
            return response;
        }
        let opened = File::open(file).and_then(|f| Ok((f.metadata()?.len(), f)));
        let (len, mut opened) = match opened {
            Ok(opened) => opened,
            Err(error) => return io_error_response(&error),
        };
        let mime = mime_guess::from_path(file).first_or_octet_stream();
        let content_type = if mime.type_() == mime_guess::mime::TEXT
            || mime == mime_guess::mime::APPLICATION_JAVASCRIPT
        {
            format!("{mime}; charset=utf-8")
        } else {
            mime.to_string()
        };
        let mut response = if len > FILE_CHUNK as u64 {
            Response::new(200).with_file(&content_type, opened, len)
        } else {
            let mut body = Vec::with_capacity(len as usize);
            if let Err(error) = opened.read_to_end(&mut body) {
                return io_error_response(&error);
            }
            Response::new(200).with_body(&content_type, body)
        };
        response.headers.append(&mut headers);
        response
    }
}

/// `If-None-Match` decides when present; otherwise `If-Modified-Since`
/// (to the second, as HTTP dates go).
fn not_modified(request: &Request, etag: &str, modified: SystemTime) -> bool {
    if let Some(tags) = request.header("if-none-match") {
        return tags.split(',').any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    }
    let Some(since) = request
        .header("if-modified-since")
        .and_then(|v| httpdate::parse_http_date(v).ok())
    else {
        return false;
    };
    let secs = |t: SystemTime| t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    secs(modified) <= secs(since)
}

/// A missing file, or no file for the client to ask for: a 404.
fn is_not_found(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::InvalidFilename
    )
}

/// The answer for an I/O error on the way to a file: 404 for a missing file
/// ([`is_not_found`]); 503 with `Retry-After` when the process or system
/// is out of file descriptors (`EMFILE`, `ENFILE`), a passing condition;
/// otherwise 500 (permission denied, a symlink loop, a read error). The
/// body names the error, never the path.
fn io_error_response(error: &io::Error) -> Response {
    if is_not_found(error) {
        return Response::error(404, "");
    }
    let detail = format!("cannot read the file: {error}");
    if cfg!(unix) && matches!(error.raw_os_error(), Some(23 | 24)) {
        Response::error(503, &detail).with_header("Retry-After", "1")
    } else {
        Response::error(500, &detail)
    }
}

/// No file for this path (the checks refused it): a 404.
fn refused() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

/// The file `relative` (percent-encoded, under the root) names, and its
/// metadata, if it is a
/// regular file inside `root` (a directory means its `index`). Every
/// escape is refused (as `NotFound`): `..` in any encoding, backslashes,
/// NUL, absolute components, and symlinks that lead out of the root (the
/// resolved path must start with the canonical root). Other I/O errors
/// are returned as they are.
fn resolve(root: &Path, relative: &str, index: &str) -> io::Result<(PathBuf, Metadata)> {
    let decoded = percent_encoding::percent_decode_str(relative)
        .decode_utf8()
        .map_err(|_| refused())?;
    if decoded.contains(['\\', '\0']) {
        return Err(refused());
    }
    let mut path = root.to_path_buf();
    for segment in decoded.split('/').filter(|s| !s.is_empty() && *s != ".") {
        let mut components = Path::new(segment).components();
        match (components.next(), components.next()) {
            (Some(Component::Normal(part)), None) => path.push(part),
            _ => return Err(refused()), // `..`, a root, a prefix
        }
    }
    let mut path = path.canonicalize()?;
    let mut meta = fs::metadata(&path)?;
    if meta.is_dir() {
        path = path.join(index).canonicalize()?;
        meta = fs::metadata(&path)?;
    }
    if path.starts_with(root) && meta.is_file() {
        Ok((path, meta))
    } else {
        Err(refused())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> (PathBuf, PathBuf) {
        let base = std::env::temp_dir().join(format!(
            "hubbub-files-{}-{}",
            std::process::id(),
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let root = base.join("public");
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("index.html"), "<p>home</p>").unwrap();
        fs::write(root.join("sub/index.html"), "sub").unwrap();
        fs::write(root.join("app.js"), "let x;").unwrap();
        fs::write(base.join("secret.txt"), "secret").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(base.join("secret.txt"), root.join("link.txt")).unwrap();
        (base, root.canonicalize().unwrap())
    }

    #[test]
    fn resolves_inside_and_refuses_every_escape() {
        let (base, root) = tree();
        let resolve =
            |relative: &str, index: &str| resolve(&root, relative, index).ok().map(|(p, _)| p);
        assert_eq!(resolve("/", "index.html"), Some(root.join("index.html")));
        assert_eq!(
            resolve("/sub/", "index.html"),
            Some(root.join("sub/index.html"))
        );
        assert_eq!(
            resolve("/./app.js", "index.html"),
            Some(root.join("app.js"))
        );
        assert_eq!(
            resolve("/%61pp.js", "index.html"),
            Some(root.join("app.js"))
        );
        for bad in [
            "/../secret.txt",
            "/sub/../../secret.txt",
            "/%2e%2e/secret.txt",
            "/%2E%2E%2fsecret.txt",
            "/..%2fsecret.txt",
            "/sub%2f..%2f..%2fsecret.txt",
            "/..\\secret.txt",
            "/%5c..%5csecret.txt",
            "/app.js%00.html",
            "/link.txt",
            "/missing",
            "/%ff",
            "/app.js/x",
        ] {
            assert_eq!(resolve(bad, "index.html"), None, "{bad}");
        }
        fs::remove_dir_all(base).unwrap();
    }

    fn get(path: &str) -> Request {
        Request {
            method: "GET".into(),
            path: path.into(),
            query: None,
            version: 1,
            headers: Vec::new(),
            body: Default::default(),
            peer: None,
        }
    }

    #[test]
    fn only_a_missing_file_is_a_404_other_io_errors_are_the_servers() {
        let status = |kind: io::ErrorKind| io_error_response(&io::Error::from(kind)).status;
        assert_eq!(status(io::ErrorKind::NotFound), 404);
        assert_eq!(status(io::ErrorKind::NotADirectory), 404);
        assert_eq!(status(io::ErrorKind::PermissionDenied), 500);
        let denied = io_error_response(&io::Error::from(io::ErrorKind::PermissionDenied));
        let body = String::from_utf8_lossy(&denied.body).into_owned();
        assert!(
            body.starts_with("500 Internal Server Error: cannot read the file: "),
            "{body}"
        );
        assert!(body.contains("ermission denied"), "{body}");
        #[cfg(unix)]
        {
            // EMFILE: out of file descriptors, a passing condition.
            let emfile = io_error_response(&io::Error::from_raw_os_error(24));
            assert_eq!(emfile.status, 503);
            assert_eq!(emfile.header("retry-after"), Some("1"));
            let body = String::from_utf8_lossy(&emfile.body).into_owned();
            assert!(body.contains("cannot read the file: "), "{body}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_file_that_cannot_be_read_is_500_not_404() {
        // A symlink loop fails with ELOOP, even for root (which permissions
        // do not stop).
        let (base, root) = tree();
        std::os::unix::fs::symlink(root.join("loop"), root.join("loop")).unwrap();
        let files = StaticFiles::new(&root).spa_fallback(true);
        let answer = files.serve(&get("/loop")).unwrap();
        assert_eq!(answer.status, 500);
        let body = String::from_utf8_lossy(&answer.body).into_owned();
        assert!(body.contains("cannot read the file: "), "{body}");
        // A missing file is still a 404 (or, here, the SPA fallback), and
        // a present one is served.
        assert_eq!(files.serve(&get("/app.js")).unwrap().status, 200);
        let fallback = files.serve(&get("/missing")).unwrap();
        assert_eq!(
            (fallback.status, &fallback.body[..]),
            (200, &b"<p>home</p>"[..])
        );
        let plain = StaticFiles::new(&root);
        assert_eq!(plain.serve(&get("/missing")).unwrap().status, 404);
        assert_eq!(plain.serve(&get("/../secret.txt")).unwrap().status, 404);
        fs::remove_dir_all(base).unwrap();
    }
}
