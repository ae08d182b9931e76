//! Who is asking over HTTP: long polling (`GET /ws/poll`) and
//! `POST /ws/send` under the hub's authentication (an
//! `Authorization: Bearer <token>` header; 401 without it or with a bad
//! token) and room authorization (403 for a room the identity may not
//! use), each answer's body naming the problem. With the `jwt` feature,
//! the demo login ([`HttpAppBuilder::demo_login`](crate::HttpAppBuilder::demo_login)).

use hubbub_hub::{Hub, Identity};

use crate::{Request, Response};

/// The identity of `request` (`None` when the hub does not authenticate),
/// or the 401 naming the problem.
pub(crate) fn authenticate(hub: &Hub, request: &Request) -> Result<Option<Identity>, Response> {
    hub.authenticate_bearer(request.header("authorization"))
        .map_err(|error| {
            Response::json_error(401, &error.to_string()).with_header("WWW-Authenticate", "Bearer")
        })
}

/// Room authorization for an HTTP request: the 403 naming the reason.
pub(crate) fn authorize(
    hub: &Hub,
    identity: Option<&Identity>,
    room: Option<&str>,
) -> Result<(), Response> {
    match room {
        Some(room) => hub
            .authorize(identity, room)
            .map_err(|reason| Response::json_error(403, &reason)),
        None => Ok(()),
    }
}

#[cfg(feature = "jwt")]
pub(crate) use demo::login;

#[cfg(feature = "jwt")]
mod demo {
    use std::time::Duration;

    use hubbub_hub::JwtAuth;
    use serde_json::{json, Value};

    use crate::{Request, Response};

    /// The longest name the demo login takes, in characters.
    const MAX_NAME: usize = 32;

    /// `POST /api/login` with `{"name": N}`: a token for N valid for `ttl`.
    pub(crate) fn login(jwt: &JwtAuth, ttl: Duration, request: &Request) -> Response {
        let body: Value = match serde_json::from_slice(&request.body) {
            Ok(body) => body,
            Err(_) => return Response::json_error(400, "invalid JSON"),
        };
        let Some(name) = body.get("name").and_then(Value::as_str) else {
            return Response::json_error(400, "name must be a string");
        };
        if let Err(problem) = check_name(name) {
            return Response::json_error(400, problem);
        }
        match jwt.issue(name, ttl, Value::Null) {
            Some(token) => Response::json(&json!({ "token": token, "user": name })),
            None => Response::json_error(500, "this server cannot issue tokens"),
        }
    }

    /// Any name of 1 to 32 characters without control characters or a
    /// colon (the chat's lines are `room R: name: text`).
    fn check_name(name: &str) -> Result<(), &'static str> {
        match name.chars().count() {
            0 => Err("name must not be empty"),
            n if n > MAX_NAME => Err("name must be at most 32 characters"),
            _ if name.chars().any(|c| c.is_control() || c == ':') => {
                Err("name must not contain control characters or ':'")
            }
            _ => Ok(()),
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn names_are_checked() {
            assert!(check_name("alice").is_ok());
            assert!(check_name(&"é".repeat(32)).is_ok());
            assert_eq!(check_name(""), Err("name must not be empty"));
            assert!(check_name(&"x".repeat(33)).is_err());
            assert!(check_name("a:b").is_err());
            assert!(check_name("a\nb").is_err());
        }
    }
}
