//! `GET /openapi.json`: an OpenAPI 3 document of the built-in routes and
//! the application's own.

use serde_json::{json, Map, Value};

use crate::app::Route;

/// The document for a service called `service` with `routes`.
pub(crate) fn document(service: &str, routes: &[Route]) -> Value {
    let envelope = json!({
        "type": "object",
        "required": ["type"],
        "properties": {
            "id": { "type": "string" },
            "kind": { "type": "string", "default": "event" },
            "room": { "type": "string", "nullable": true },
            "type": { "type": "string" },
            "ts": {},
            "payload": {},
            "session_id": { "type": "string" }
        }
    });
    let error = json!({ "description": "The request is invalid", "content": { "application/json": { "schema": { "type": "object", "properties": { "error": { "type": "string" } } } } } });
    let mut paths = Map::new();
    paths.insert("/".into(), json!({ "get": {
        "summary": "WebSocket upgrade (RFC 6455), when the request carries Upgrade: websocket on the WebSocket port",
        "responses": {
            "101": { "description": "Switching Protocols: the connection is a WebSocket" },
            "400": { "description": "Malformed upgrade request" },
            "426": { "description": "Unsupported WebSocket version" },
            "403": { "description": "Origin not allowed (ALLOWED_ORIGINS); the body names it" },
            "429": { "description": "Too many connections from this address, at once or per second" },
            "503": { "description": "Server full (MAX_CONNECTIONS)" }
        }
    }}));
    paths.insert("/api/health".into(), json!({ "get": {
        "summary": "Health check",
        "responses": { "200": { "description": "The service is up", "content": { "application/json": { "example": { "ok": true, "service": service } } } } }
    }}));
    paths.insert("/metrics".into(), json!({ "get": {
        "summary": "Prometheus metrics (text exposition)",
        "responses": { "200": { "description": "Metrics", "content": { "application/openmetrics-text": {} } } }
    }}));
    paths.insert(
        "/openapi.json".into(),
        json!({ "get": {
            "summary": "This document",
            "responses": { "200": { "description": "OpenAPI 3 document" } }
        }}),
    );
    paths.insert("/ws/poll".into(), json!({ "get": {
        "summary": "Long poll: messages of a session, held until one arrives or the timeout passes",
        "parameters": [
            { "name": "session_id", "in": "query", "schema": { "type": "string", "default": "broadcast" }, "description": "room:<room> or broadcast" },
            { "name": "max", "in": "query", "schema": { "type": "integer", "default": 50, "minimum": 1 } },
            { "name": "timeout", "in": "query", "schema": { "type": "number", "default": 25 }, "description": "seconds to hold the request (capped)" }
        ],
        "responses": {
            "200": { "description": "Envelopes, oldest first (empty after the timeout)", "content": { "application/json": { "schema": { "type": "array", "items": envelope } } } },
            "400": error,
            "503": { "description": "Long polling is not enabled" },
            "403": { "description": "Origin not allowed (ALLOWED_ORIGINS)" },
            "429": { "description": "Over the polls per second or held polls of this address" }
        }
    }}));
    paths.insert("/ws/send".into(), json!({ "post": {
        "summary": "Send an envelope to WebSocket sessions and poll sessions",
        "requestBody": { "required": true, "content": { "application/json": { "schema": envelope } } },
        "responses": {
            "202": { "description": "Queued", "content": { "application/json": { "example": { "session_id": "room:general", "status": "queued" } } } },
            "400": error,
            "413": { "description": "Body over the limit" },
            "503": { "description": "Long polling is not enabled" },
            "403": { "description": "Origin not allowed (ALLOWED_ORIGINS)" },
            "429": { "description": "Over the sends per second of this address" }
        }
    }}));
    for route in routes {
        let entry = paths.entry(route.path.clone()).or_insert_with(|| json!({}));
        if let Value::Object(methods) = entry {
            methods.insert(
                route.method.to_ascii_lowercase(),
                json!({ "summary": "Application route", "responses": { "default": { "description": "Defined by the application" } } }),
            );
        }
    }
    json!({
        "openapi": "3.0.3",
        "info": { "title": service, "version": env!("CARGO_PKG_VERSION") },
        "paths": paths,
    })
}
