//! A ready [`Authenticator`]: JSON Web Tokens (RFC 7519) verified with the
//! `jsonwebtoken` crate, HS256 with a shared secret or RS256/ES256 with a
//! public key in a PEM file.
//!
//! jsonwebtoken 9 is used: it is built on `ring`, the crypto crate rustls
//! uses with its ring provider, so a server with TLS and JWT holds one
//! crypto library (jsonwebtoken 10 asks for `aws-lc-rs`, with a C and
//! assembly build, or the RustCrypto stack).
//!
//! Checked: the signature, the algorithm (only the configured one; `none`
//! never), `exp` (required), `nbf` when present, and the issuer and
//! audience when configured. The user id is the `sub` claim (or
//! [`JwtAuth::user_claim`]); its expiry closes the session (see
//! [`auth`](crate::auth)).

use std::{
    fmt,
    path::Path,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use jsonwebtoken::{errors::ErrorKind, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::Value;

use crate::{AuthError, Authenticator, Identity};

/// Verifies JWTs; see the module documentation.
#[derive(Clone)]
pub struct JwtAuth {
    key: DecodingKey,
    /// The HS256 secret, kept to [`issue`](Self::issue) tokens.
    secret: Option<Vec<u8>>,
    validation: Validation,
    user_claim: String,
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithms", &self.validation.algorithms)
            .field("user_claim", &self.user_claim)
            .finish_non_exhaustive()
    }
}

/// A key that could not be loaded.
#[derive(Debug)]
pub struct KeyError {
    /// The file.
    pub path: String,
    /// What went wrong.
    pub reason: String,
}

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JWT public key {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for KeyError {}

impl JwtAuth {
    fn with(key: DecodingKey, algorithm: Algorithm, secret: Option<Vec<u8>>) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = 0;
        validation.validate_nbf = true;
        JwtAuth {
            key,
            secret,
            validation,
            user_claim: "sub".into(),
        }
    }

    /// HS256 with a shared secret.
    pub fn hs256(secret: &[u8]) -> Self {
        Self::with(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
            Some(secret.to_vec()),
        )
    }

    /// RS256 with the RSA public key in the PEM file at `path`.
    pub fn rs256_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let key = read_key(path.as_ref(), DecodingKey::from_rsa_pem)?;
        Ok(Self::with(key, Algorithm::RS256, None))
    }

    /// ES256 with the P-256 public key in the PEM file at `path`.
    pub fn es256_pem_file(path: impl AsRef<Path>) -> Result<Self, KeyError> {
        let key = read_key(path.as_ref(), DecodingKey::from_ec_pem)?;
        Ok(Self::with(key, Algorithm::ES256, None))
    }

    /// Accept only tokens whose `iss` is `issuer`.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.validation.set_issuer(&[issuer]);
        self
    }

    /// Accept only tokens whose `aud` holds `audience`.
    pub fn audience(mut self, audience: &str) -> Self {
        self.validation.set_audience(&[audience]);
        self
    }

    /// Tolerate clocks this far apart on `exp` and `nbf` (none by default).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.validation.leeway = leeway.as_secs();
        self
    }

    /// Take the user id from this claim rather than `sub`.
    pub fn user_claim(mut self, claim: &str) -> Self {
        self.user_claim = claim.to_owned();
        self
    }

    /// An HS256 token for `user` (as `sub`) valid for `ttl`, with the extra
    /// `claims` (an object, or `Value::Null`): the demo login's. `None`
    /// for an authenticator built from a public key.
    pub fn issue(&self, user: &str, ttl: Duration, claims: Value) -> Option<String> {
        let secret = self.secret.as_deref()?;
        let mut body = match claims {
            Value::Object(map) => map,
            _ => serde_json::Map::new(),
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        body.insert("sub".into(), user.into());
        body.insert("iat".into(), now.as_secs().into());
        body.insert("exp".into(), (now + ttl).as_secs().into());
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &body,
            &EncodingKey::from_secret(secret),
        )
        .ok()
    }
}

fn read_key(
    path: &Path,
    parse: fn(&[u8]) -> jsonwebtoken::errors::Result<DecodingKey>,
) -> Result<DecodingKey, KeyError> {
    let error = |reason: String| KeyError {
        path: path.display().to_string(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| error(e.to_string()))?;
    parse(&pem).map_err(|e| error(format!("not a usable PEM public key ({e})")))
}

impl Authenticator for JwtAuth {
    fn verify(&self, token: &str) -> Result<Identity, AuthError> {
        let data =
            jsonwebtoken::decode::<Value>(token, &self.key, &self.validation).map_err(|error| {
                match error.kind() {
                    ErrorKind::ExpiredSignature => AuthError::Expired,
                    ErrorKind::InvalidSignature => AuthError::Invalid("bad signature".into()),
                    ErrorKind::InvalidAlgorithm => AuthError::Invalid("wrong algorithm".into()),
                    ErrorKind::ImmatureSignature => {
                        AuthError::Invalid("not valid yet (nbf)".into())
                    }
                    ErrorKind::InvalidIssuer => AuthError::Invalid("wrong issuer".into()),
                    ErrorKind::InvalidAudience => AuthError::Invalid("wrong audience".into()),
                    ErrorKind::MissingRequiredClaim(claim) => {
                        AuthError::Invalid(format!("no {claim} claim"))
                    }
                    _ => AuthError::Invalid("malformed".into()),
                }
            })?;
        let claims = data.claims;
        let user = claims
            .get(&self.user_claim)
            .and_then(Value::as_str)
            .filter(|user| !user.is_empty())
            .ok_or_else(|| AuthError::Invalid(format!("no {} claim", self.user_claim)))?
            .to_owned();
        let expires = claims
            .get("exp")
            .and_then(Value::as_u64)
            .map(|exp| UNIX_EPOCH + Duration::from_secs(exp));
        Ok(Identity {
            user,
            claims,
            expires,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn token(secret: &[u8], algorithm: Algorithm, claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(algorithm),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn hs256_tokens_are_verified_and_name_their_problem() {
        let auth = JwtAuth::hs256(b"secret");
        let good = token(
            b"secret",
            Algorithm::HS256,
            json!({"sub": "ada", "exp": now() + 60, "rooms": ["a"]}),
        );
        let identity = auth.verify(&good).unwrap();
        assert_eq!(identity.user(), "ada");
        assert_eq!(identity.claims()["rooms"], json!(["a"]));
        assert!(identity.expires_at().is_some());

        let cases = [
            (
                token(
                    b"other",
                    Algorithm::HS256,
                    json!({"sub": "a", "exp": now() + 60}),
                ),
                "invalid token: bad signature",
            ),
            (
                token(
                    b"secret",
                    Algorithm::HS384,
                    json!({"sub": "a", "exp": now() + 60}),
                ),
                "invalid token: wrong algorithm",
            ),
            (
                token(
                    b"secret",
                    Algorithm::HS256,
                    json!({"sub": "a", "exp": now() - 5}),
                ),
                "token expired",
            ),
            (
                token(b"secret", Algorithm::HS256, json!({"sub": "a"})),
                "invalid token: no exp claim",
            ),
            (
                token(b"secret", Algorithm::HS256, json!({"exp": now() + 60})),
                "invalid token: no sub claim",
            ),
            (
                token(
                    b"secret",
                    Algorithm::HS256,
                    json!({"sub": "a", "exp": now() + 60, "nbf": now() + 30}),
                ),
                "invalid token: not valid yet (nbf)",
            ),
            ("not.a.jwt".to_owned(), "invalid token: malformed"),
        ];
        for (token, expected) in cases {
            assert_eq!(auth.verify(&token).unwrap_err().to_string(), expected);
        }
    }

    #[test]
    fn issuer_audience_and_user_claim_are_checked() {
        let auth = JwtAuth::hs256(b"k")
            .issuer("me")
            .audience("chat")
            .user_claim("name");
        let claims =
            |iss: &str, aud: &str| json!({"name": "bo", "iss": iss, "aud": aud, "exp": now() + 60});
        assert_eq!(
            auth.verify(&token(b"k", Algorithm::HS256, claims("me", "chat")))
                .unwrap()
                .user(),
            "bo"
        );
        assert_eq!(
            auth.verify(&token(b"k", Algorithm::HS256, claims("you", "chat")))
                .unwrap_err(),
            AuthError::Invalid("wrong issuer".into())
        );
        assert_eq!(
            auth.verify(&token(b"k", Algorithm::HS256, claims("me", "mail")))
                .unwrap_err(),
            AuthError::Invalid("wrong audience".into())
        );
    }

    #[test]
    fn issued_tokens_verify_and_key_files_name_the_file() {
        let auth = JwtAuth::hs256(b"k");
        let token = auth
            .issue("ada", Duration::from_secs(60), json!({"rooms": ["x"]}))
            .unwrap();
        let identity = auth.verify(&token).unwrap();
        assert_eq!(
            (identity.user(), &identity.claims()["rooms"]),
            ("ada", &json!(["x"]))
        );
        let missing = JwtAuth::rs256_pem_file("/nonexistent/key.pem").unwrap_err();
        assert!(
            missing
                .to_string()
                .starts_with("JWT public key /nonexistent/key.pem: "),
            "{missing}"
        );
        let dir = std::env::temp_dir().join(format!("hubbub-jwt-{}", std::process::id()));
        std::fs::write(&dir, "not a key").unwrap();
        let bad = JwtAuth::es256_pem_file(&dir).unwrap_err();
        assert!(
            bad.to_string().contains("not a usable PEM public key"),
            "{bad}"
        );
        let _ = std::fs::remove_file(&dir);
        assert!(JwtAuth {
            secret: None,
            ..auth
        }
        .issue("a", Duration::ZERO, Value::Null)
        .is_none());
    }
}
