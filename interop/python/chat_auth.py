"""Python `websockets` (and urllib) against the chat demo in auth mode.

usage: chat_auth.py http://127.0.0.1:HTTP_PORT ws://127.0.0.1:WS_PORT/

The chat runs with AUTH_REQUIRED=true and AUTH_TIMEOUT=1. Checks the
contract of examples/README.md (chat, auth mode): the login routes, the
auth message first (what comes before it is not processed), `auth.ok`, the
sender's name in chat lines, 1008 for a bad token or none in time, and the
bearer token on /ws/send and /ws/poll. Exits non-zero on the first
mismatch; every wait is bounded.
"""
import asyncio
import json
import sys
import urllib.error
import urllib.request

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

WAIT = 10


def http(method, url, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=WAIT) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"null")


def expect(what, got, want):
    if got != want:
        sys.exit(f"chat_auth: {what}: got {got!r}, want {want!r}")


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), WAIT)


async def closed_with(ws):
    try:
        while True:
            await asyncio.wait_for(ws.recv(), WAIT)
    except ConnectionClosed as closed:
        return (closed.rcvd.code, closed.rcvd.reason) if closed.rcvd else None


async def main(base, ws_url):
    expect("GET /api/login", http("GET", f"{base}/api/login"), (200, {"auth_required": True}))
    status, body = http("POST", f"{base}/api/login", {"name": ""})
    expect("empty name", status, 400)
    status, body = http("POST", f"{base}/api/login", {"name": "alice"})
    expect("login", (status, body.get("user")), (200, "alice"))
    token = body["token"]

    async with connect(ws_url, open_timeout=WAIT) as ws:
        await ws.send("ping")  # before auth: not processed (no pong)
        await ws.send(json.dumps({"type": "auth", "payload": {"token": token}}))
        expect("auth.ok", await recv(ws), '{"type":"auth.ok","payload":{"user":"alice"}}')
        expect("welcome", await recv(ws), "welcome to hubbub chat")
        await ws.send(json.dumps({"type": "room.join", "payload": {"room": "py"}}))
        expect("join", await recv(ws), "joined room: py")
        await ws.send(json.dumps({"type": "chat.message", "payload": {"room": "py", "text": "hi"}}))
        expect("chat line", await recv(ws), "room py: alice: hi")
        # The poll mirror keeps the sender.
        status, messages = http("GET", f"{base}/ws/poll?session_id=room:py&timeout=0", token=token)
        expect("poll status", status, 200)
        expect("poll payload", [m["payload"] for m in messages],
               [{"room": "py", "text": "hi", "user": "alice"}])
        status, _ = http("POST", f"{base}/ws/send",
                         {"type": "chat.message", "room": "py", "payload": {"text": "over http"}},
                         token=token)
        expect("/ws/send with a token", status, 202)
        expect("http line", await recv(ws), "room py: alice: over http")

    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    async with connect(ws_url, open_timeout=WAIT) as ws:
        await ws.send(json.dumps({"type": "auth", "payload": {"token": forged}}))
        expect("bad token", await closed_with(ws), (1008, "invalid token: bad signature"))
    async with connect(ws_url, open_timeout=WAIT) as ws:
        expect("no auth in time", await closed_with(ws), (1008, "authentication timeout"))

    expect("/ws/send without a token",
           http("POST", f"{base}/ws/send", {"type": "chat.message", "room": "py",
                                             "payload": {"text": "x"}}),
           (401, {"error": "missing token"}))
    expect("/ws/poll without a token", http("GET", f"{base}/ws/poll?timeout=0"),
           (401, {"error": "missing token"}))
    print("chat_auth: ok")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
