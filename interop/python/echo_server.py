"""A Python `websockets` echo server with permessage-deflate (its default
settings), on a free loopback port. Prints `listening PORT` when ready.
With a certificate chain and key (PEM), it serves wss:// instead.

usage: echo_server.py [CERT.pem KEY.pem]
"""
import asyncio
import ssl
import sys

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main(tls_files):
    context = None
    if tls_files:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls_files)
        context.set_alpn_protocols(["http/1.1"])
    async with serve(echo, "127.0.0.1", 0, compression="deflate", max_size=16 << 20,
                     ssl=context) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:3]))
