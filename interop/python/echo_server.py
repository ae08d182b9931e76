"""A Python `websockets` echo server with permessage-deflate (its default
settings), on a free loopback port. Prints `listening PORT` when ready.

usage: echo_server.py
"""
import asyncio

from websockets.asyncio.server import serve


async def echo(ws):
    async for message in ws:
        await ws.send(message)


async def main():
    async with serve(echo, "127.0.0.1", 0, compression="deflate", max_size=16 << 20) as server:
        port = server.sockets[0].getsockname()[1]
        print(f"listening {port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
