"""Python `websockets` client against hubbub's `chat` started with limits:

    ALLOWED_ORIGINS=https://chat.example WEBSOCKET_RATE_LIMIT=3
    MAX_CONNECTIONS=3 MAX_CONNECTIONS_PER_IP=2

usage: limits.py ws://127.0.0.1:PORT/

An independent client's view of the refusals: an unlisted origin gets 403
naming it, a third connection from one address 429, a fourth overall 503
with Retry-After (other addresses: 127.0.0.2 and .3 on loopback), and a
session over its message rate gets a `rate_limited` error and stays open.
Exits non-zero on the first mismatch.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

URL = sys.argv[1]
ALLOWED = "https://chat.example"


def check(cond, what):
    if not cond:
        sys.exit(f"limits: FAILED: {what}")


async def refused(status, body, **kwargs):
    try:
        async with connect(URL, open_timeout=10, **kwargs):
            pass
    except InvalidStatus as e:
        got = e.response.status_code, e.response.body.decode()
        check(got == (status, body), f"expected {status} {body!r}, got {got}")
        return e.response
    check(False, f"expected {status}, the upgrade succeeded")


async def opened(source="127.0.0.1"):
    ws = await connect(URL, origin=ALLOWED, open_timeout=10, local_addr=(source, 0))
    welcome = await asyncio.wait_for(ws.recv(), 10)
    check(welcome == "welcome to hubbub chat", f"welcome: {welcome!r}")
    return ws


async def main():
    await refused(403, "origin not allowed: https://evil.example", origin="https://evil.example")
    print("403 for https://evil.example")

    a = await opened()
    for _ in range(9):
        await a.send("ping")
    pongs = 0
    while True:
        message = await asyncio.wait_for(a.recv(), 10)
        if message != "pong":
            break
        pongs += 1
    notice = json.loads(message)
    check(notice["type"] == "error" and notice["payload"]["error"] == "rate_limited",
          f"a rate_limited error: {message}")
    check(1 <= pongs <= 4, f"{pongs} pongs at 3/s")
    await asyncio.sleep(1.1)
    await a.send("ping")
    while (message := await asyncio.wait_for(a.recv(), 10)) != "pong":
        pass
    print(f"rate: {pongs} of 9 answered, then rate_limited; open and answering a second later")

    b = await opened()
    await refused(429, "too many connections from 127.0.0.1: at most 2 at once", origin=ALLOWED)
    print("429 for a third connection from 127.0.0.1")
    c = await opened("127.0.0.2")
    response = await refused(503, "server full: at most 3 connections",
                             local_addr=("127.0.0.3", 0))
    check(response.headers.get("Retry-After") == "1", f"Retry-After: {response.headers}")
    print("503 with Retry-After for a fourth connection")
    for ws in (a, b, c):
        await ws.close()


asyncio.run(main())
print("limits: all passed")
