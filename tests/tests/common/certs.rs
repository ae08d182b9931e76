//! Certificates for the TLS tests, made with rcgen: a CA, server
//! certificates it signs (for 127.0.0.1 and localhost, expired, for another
//! host), written as PEM to a temporary directory.

use std::{
    fs,
    path::{Path, PathBuf},
    sync::atomic::{AtomicUsize, Ordering},
};

use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
};

/// A test CA and the files of the certificates it signed.
pub(crate) struct TestPki {
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
    /// The CA certificate (PEM), for clients to trust.
    pub(crate) ca: PathBuf,
}

/// A server certificate chain and key, as PEM files.
pub(crate) struct ServerFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

impl TestPki {
    /// A fresh CA in a fresh temporary directory.
    pub(crate) fn new(name: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hubbub-tls-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        fs::create_dir_all(&dir).unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("hubbub test CA {name}"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let ca = dir.join("ca.pem");
        fs::write(&ca, issuer.pem()).unwrap();
        TestPki { dir, issuer, ca }
    }

    /// A server certificate for 127.0.0.1 and localhost, valid now.
    pub(crate) fn server(&self, file: &str) -> ServerFiles {
        self.sign(file, &["127.0.0.1", "localhost"], false)
    }

    /// A server certificate for 127.0.0.1 and localhost that expired in
    /// 2021.
    pub(crate) fn expired(&self, file: &str) -> ServerFiles {
        self.sign(file, &["127.0.0.1", "localhost"], true)
    }

    /// A server certificate for another host only.
    pub(crate) fn other_host(&self, file: &str) -> ServerFiles {
        self.sign(file, &["elsewhere.example"], false)
    }

    fn sign(&self, file: &str, names: &[&str], expired: bool) -> ServerFiles {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("hubbub test {file}"));
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let files = ServerFiles {
            cert: self.dir.join(format!("{file}.crt")),
            key: self.dir.join(format!("{file}.key")),
        };
        fs::write(&files.cert, cert.pem()).unwrap();
        fs::write(&files.key, key.serialize_pem()).unwrap();
        files
    }

    /// A file in the directory with `contents`.
    pub(crate) fn file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, contents).unwrap();
        path
    }

    /// The temporary directory.
    pub(crate) fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TestPki {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
