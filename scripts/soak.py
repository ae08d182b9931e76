#!/usr/bin/env python3
"""The soak run: mixed clients against the release `chat` on one runtime for
MINUTES, sampling the server's RSS, open descriptors and ping latency.

    python3 scripts/soak.py --runtime R --bin-dir DIR --minutes M [--interval S] [--csv FILE]

Normally run by scripts/soak.sh. Clients, all on loopback and all running
for the whole duration:
  - churn: WebSocket connections that join a room, send one message, close;
  - slow consumers: room members that read a message a second (the server
    may close them 1013; they reconnect);
  - floods: a member sending 200 messages a second to the room;
  - pipelined HTTP: 20 pipelined `GET /api/health` per connection, read;
  - long polls: `GET /ws/poll?session_id=room:soak&timeout=2` in a loop,
    and `POST /ws/send` to the room.
Every INTERVAL seconds a row `seconds,rss_kib,fds,ping_ms,churned,flooded,
polls,http` goes to the CSV (ping: a WebSocket `ping` text answered
`pong`). The summary gives RSS first/last/max, fds first/last and ping
p50/p99, and flags growth: RSS last more than 1.5 x first + 16 MiB, or fds
last more than first + 16 (the first sample is taken after one interval of
warm-up). Exit status 1 when growth is flagged or the server died.
"""

import argparse
import asyncio
import csv
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import attack  # noqa: E402 - the raw-socket helpers

ROOM = "soak"
counts = {"churned": 0, "flooded": 0, "polls": 0, "http": 0}


def chat_message(text):
    return attack.text(json.dumps({"type": "chat.message", "payload": {"room": ROOM, "text": text}}))


async def forever(deadline, body, pause):
    """Run `body` until `deadline`; errors (a cut connection) just restart it."""
    while time.monotonic() < deadline:
        try:
            await asyncio.wait_for(body(), max(deadline - time.monotonic(), 0.1))
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError):
            pass
        await asyncio.sleep(pause)


async def churn(port):
    reader, writer = await attack.ws_client(port)
    writer.write(attack.join(ROOM) + chat_message("churn"))
    await writer.drain()
    await attack.until_text(reader, lambda t: t.startswith("joined"), 2)
    writer.write(attack.frame(0x8, b"\x03\xe8"))
    attack.close_conn(writer)
    counts["churned"] += 1


def slow_consumer(deadline):
    async def body():
        reader, writer = await attack.ws_client(port_ws)
        writer.write(attack.join(ROOM))
        await writer.drain()
        try:
            while time.monotonic() < deadline:
                opcode, _ = await attack.read_frame(reader)
                if opcode == 8:
                    return
                await asyncio.sleep(1)
        finally:
            attack.close_conn(writer)
    return body


def flood(deadline):
    async def body():
        reader, writer = await attack.ws_client(port_ws)
        writer.write(attack.join(ROOM))

        async def read_all():
            while await reader.read(65536):
                pass

        drain = asyncio.ensure_future(read_all())
        try:
            while time.monotonic() < deadline and not drain.done():
                writer.write(b"".join(chat_message(f"flood {counts['flooded'] + i}") for i in range(20)))
                await writer.drain()
                counts["flooded"] += 20
                await asyncio.sleep(0.1)
        finally:
            drain.cancel()
            attack.close_conn(writer)
    return body


async def pipelined_http(port):
    reader, writer = await attack.open_conn(port)
    writer.write(b"GET /api/health HTTP/1.1\r\nHost: a\r\n\r\n" * 20)
    await writer.drain()
    statuses = await attack.read_statuses(reader, 20, 5)
    attack.close_conn(writer)
    counts["http"] += len(statuses)


async def long_poll(port):
    reader, writer = await attack.open_conn(port)
    writer.write(f"GET /ws/poll?session_id=room:{ROOM}&timeout=2 HTTP/1.1\r\nHost: a\r\n\r\n".encode()
                 + attack.post_send({"type": "chat.message", "room": ROOM, "payload": {"text": "poll"}}))
    await writer.drain()
    statuses = await attack.read_statuses(reader, 2, 5)
    attack.close_conn(writer)
    counts["polls"] += len(statuses)


async def ping_latency(port):
    reader, writer = await attack.ws_client(port)
    try:
        start = time.monotonic()
        writer.write(attack.text("ping"))
        await writer.drain()
        answer = await attack.until_text(reader, lambda t: t == "pong", 5)
        return (time.monotonic() - start) * 1000 if answer and answer[0] == "text" else None
    finally:
        attack.close_conn(writer)


def percentile(values, p):
    values = sorted(values)
    if not values:
        return float("nan")
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


async def main():
    global port_ws
    parser = argparse.ArgumentParser()
    parser.add_argument("--runtime", default="tokio")
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--csv", default="soak.csv")
    args = parser.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    store = tempfile.mkdtemp(prefix="hubbub-soak-")
    chat = await attack.Server.start(
        [os.path.join(args.bin_dir, "chat"), "--runtime", args.runtime],
        env={"SERVER_PORT": "0", "WEBSOCKET_PORT": "0", "STORE_PATH": os.path.join(store, "chat.db")},
        cwd=os.path.join(root, "examples", "chat"))
    http_port, port_ws = chat.ports[0], chat.ports[1]
    deadline = time.monotonic() + args.minutes * 60
    tasks = [asyncio.ensure_future(forever(deadline, lambda: churn(port_ws), 0.05)) for _ in range(2)]
    tasks += [asyncio.ensure_future(forever(deadline, slow_consumer(deadline), 1)) for _ in range(3)]
    tasks += [asyncio.ensure_future(forever(deadline, flood(deadline), 1))]
    tasks += [asyncio.ensure_future(forever(deadline, lambda: pipelined_http(http_port), 0.2))]
    tasks += [asyncio.ensure_future(forever(deadline, lambda: long_poll(http_port), 0.1)) for _ in range(2)]

    rows = []
    started = time.monotonic()
    died = False
    with open(args.csv, "w", newline="") as out:
        table = csv.writer(out)
        table.writerow(["seconds", "rss_kib", "fds", "ping_ms", "churned", "flooded", "polls", "http"])
        while time.monotonic() + args.interval <= deadline + 0.5:
            await asyncio.sleep(args.interval)
            if chat.proc.returncode is not None:
                died = True
                break
            try:
                ping = await ping_latency(port_ws)
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, RuntimeError):
                ping = None
            row = [round(time.monotonic() - started), chat.rss() // 1024, chat.fds(),
                   round(ping, 2) if ping is not None else "", counts["churned"], counts["flooded"],
                   counts["polls"], counts["http"]]
            rows.append(row)
            table.writerow(row)
            out.flush()
            print("soak: " + ",".join(map(str, row)), flush=True)
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    # Idle again: the last sample after the clients are gone.
    await asyncio.sleep(2)
    idle_rss, idle_fds = (chat.rss() // 1024, chat.fds()) if chat.proc.returncode is None else (0, 0)
    await chat.stop()
    shutil.rmtree(store, ignore_errors=True)

    if died or len(rows) < 2:
        print(f"soak: FAIL: {'the server died' if died else 'too few samples'}")
        return 1
    rss = [r[1] for r in rows]
    fds = [r[2] for r in rows]
    pings = [r[3] for r in rows if r[3] != ""]
    rss_growth = rss[-1] > 1.5 * rss[0] + 16 * 1024
    fd_leak = fds[-1] > fds[0] + 16
    print(f"soak summary ({args.runtime}, {args.minutes:g} min, {len(rows)} samples, CSV {args.csv}):")
    print(f"  RSS KiB: first {rss[0]}, last {rss[-1]}, max {max(rss)}, idle after {idle_rss}"
          + ("  GROWTH" if rss_growth else "  flat"))
    print(f"  fds: first {fds[0]}, last {fds[-1]}, max {max(fds)}, idle after {idle_fds}"
          + ("  LEAK" if fd_leak else "  no leak"))
    print(f"  ping ms: p50 {percentile(pings, 50):.2f}, p99 {percentile(pings, 99):.2f}, "
          f"{len(rows) - len(pings)} unanswered")
    print(f"  clients: {counts['churned']} churned, {counts['flooded']} flood messages, "
          f"{counts['polls']} poll/send answers, {counts['http']} pipelined HTTP answers")
    return 1 if rss_growth or fd_leak else 0


port_ws = 0

if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
