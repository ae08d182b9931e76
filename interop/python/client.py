"""Python `websockets` client against hubbub's `echo --deflate`.

usage: client.py ws://127.0.0.1:PORT

For each offer below: connect, check what was negotiated, and round-trip
text and binary messages of many sizes (some fragmented). Exits non-zero on
the first mismatch.
"""
import asyncio
import os
import sys

from websockets.asyncio.client import connect
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory as Offer

SIZES = [0, 1, 100, 127, 128, 1000, 1024, 4096, 65535, 65536, 300_000, 1 << 20]
UNIT = '{"type":"chat.message","payload":{"room":"lobby","text":"hello, world"}}'

# (name, offer, expected Sec-WebSocket-Extensions answer or None)
CASES = [
    ("default offer", Offer(), "permessage-deflate; server_no_context_takeover"),
    ("server_no_context_takeover", Offer(server_no_context_takeover=True),
     "permessage-deflate; server_no_context_takeover"),
    ("client_no_context_takeover", Offer(client_no_context_takeover=True),
     "permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
    ("server_max_window_bits=10", Offer(server_max_window_bits=10),
     "permessage-deflate; server_no_context_takeover; server_max_window_bits=10"),
    ("client_max_window_bits=9", Offer(client_max_window_bits=9),
     "permessage-deflate; server_no_context_takeover"),
    ("no client_max_window_bits", Offer(client_max_window_bits=None),
     "permessage-deflate; server_no_context_takeover"),
    ("server_max_window_bits=8 (declined)", Offer(server_max_window_bits=8), None),
]


def text(n):
    return (UNIT * (n // len(UNIT) + 1))[:n]


def binary(n):
    return bytes((i * 7 + n) % 251 for i in range(n))


async def run_case(url, name, offer, expected):
    async with connect(url, extensions=[offer], compression=None, max_size=16 << 20) as ws:
        got = ws.response.headers.get("Sec-WebSocket-Extensions")
        if got != expected:
            raise SystemExit(f"{name}: negotiated {got!r}, expected {expected!r}")
        for n in SIZES:
            for message in (text(n), binary(n)):
                await ws.send(message)
                echo = await asyncio.wait_for(ws.recv(), 20)
                if echo != message:
                    raise SystemExit(f"{name}: {n}-byte {type(message).__name__} changed")
        # A fragmented compressed message.
        parts = [text(1000), text(5000), text(10)]
        await ws.send(iter(parts))
        echo = await asyncio.wait_for(ws.recv(), 20)
        if echo != "".join(parts):
            raise SystemExit(f"{name}: fragmented message changed")
    print(f"ok  {name}: {got}")


async def main(url):
    for case in CASES:
        await asyncio.wait_for(run_case(url, *case), 120)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
