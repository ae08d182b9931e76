"""An ASGI echo app for hypercorn: WebSockets on any path echo text and
binary messages. Served by hypercorn over TLS with ALPN h2, a WebSocket
arrives as an extended CONNECT (RFC 8441) on an HTTP/2 stream.

    hypercorn --certfile server.pem --keyfile server.key \
        --bind 127.0.0.1:PORT h2_echo_asgi:app

(scripts/interop-python.sh, step 9; tests/tests/h2_client.rs
`hypercorn_echo` is the client.)
"""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"WebSockets only"})
        return
    # A WebSocket: over HTTP/2 when scope["http_version"] is "2".
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") is not None:
            await send({"type": "websocket.send", "text": message["text"]})
        else:
            await send({"type": "websocket.send", "bytes": message.get("bytes") or b""})
