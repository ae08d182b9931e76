"""Python `websockets` client over `ssl` against hubbub's `echo --tls-cert
--tls-key`.

usage: tls_client.py wss://127.0.0.1:PORT CA.pem

Verifies the server's certificate with CA.pem (host name included),
checks ALPN and the TLS version, round-trips text and binary messages of
many sizes with and without compression, then checks that a client which
does not trust CA.pem is refused. Exits non-zero on the first mismatch.
"""
import asyncio
import ssl
import sys

from websockets.asyncio.client import connect

SIZES = [0, 1, 100, 16_383, 16_384, 16_385, 65_536, 300_000, 1 << 20]


def text(n):
    return ("hello over TLS " * (n // 15 + 1))[:n]


def binary(n):
    return bytes((i * 7 + n) % 251 for i in range(n))


async def round_trips(url, context, compression):
    async with connect(url, ssl=context, compression=compression, max_size=16 << 20) as ws:
        tls = ws.transport.get_extra_info("ssl_object")
        if tls is None:
            raise SystemExit("not a TLS connection")
        if tls.selected_alpn_protocol() != "http/1.1":
            raise SystemExit(f"ALPN: {tls.selected_alpn_protocol()!r}, expected 'http/1.1'")
        for n in SIZES:
            for message in (text(n), binary(n)):
                await ws.send(message)
                echo = await asyncio.wait_for(ws.recv(), 20)
                if echo != message:
                    raise SystemExit(f"{n}-byte {type(message).__name__} changed")
        print(f"ok  {tls.version()}, compression={compression}: "
              f"{ws.response.headers.get('Sec-WebSocket-Extensions')}")


async def main(url, ca):
    context = ssl.create_default_context(cafile=ca)
    context.set_alpn_protocols(["http/1.1"])
    for compression in (None, "deflate"):
        await asyncio.wait_for(round_trips(url, context, compression), 120)
    # Without the test CA, verification must fail.
    try:
        await asyncio.wait_for(round_trips(url, ssl.create_default_context(), None), 20)
    except ssl.SSLCertVerificationError as error:
        print(f"ok  refused without the CA: {error.verify_message}")
    else:
        raise SystemExit("connected without trusting the CA")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
