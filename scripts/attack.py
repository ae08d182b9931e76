#!/usr/bin/env python3
"""The attack suite: issue #16's attacks, run against the release `chat` and
`echo --deflate` binaries on one runtime, each a check with a threshold.

    python3 scripts/attack.py --runtime tokio|smol|mio --bin-dir DIR [--only NAME,..]

Normally run by scripts/attack.sh (which builds the binaries and runs every
runtime). Standard library only (asyncio over raw sockets): the attacks
need byte-level control of what is sent and when (half a head, a frame
dripped a byte a second, unfinished compressed messages, pipelined requests
never read), which no client library gives, and no venv is needed. Every
check prints one line `[RUNTIME] NAME: measured ... (threshold ...) ok|FAIL`;
the exit code is 1 when any check failed, else 0. Loopback only; every loop is bounded in count and time.

Memory is the server's VmRSS (/proc/PID/status) before and after an attack,
divided by the attacking connections or bytes; the servers run with their
defaults except the settings named in CHAT_ENV.
"""

import argparse
import asyncio
import base64
import json
import os
import re
import shutil
import signal
import sqlite3
import struct
import sys
import tempfile
import time
import zlib

# The per-message receive deadline the chat is started with (defect 8):
# a message must complete within this many seconds of its first byte.
RECEIVE_TIMEOUT_KEY = os.environ.get("ATTACK_RECEIVE_TIMEOUT_KEY", "WEBSOCKET_MESSAGE_TIMEOUT")
RECEIVE_TIMEOUT = 5

CHAT_ENV = {
    "SERVER_PORT": "0",
    "WEBSOCKET_PORT": "0",
    "WEBSOCKET_MAX_MESSAGE_SIZE": "131072",  # room for 60 KB history entries
    "WEBSOCKET_MAX_ROOMS": "64",
    RECEIVE_TIMEOUT_KEY: str(RECEIVE_TIMEOUT),
}

KEY = base64.b64encode(b"attack-suite-key").decode()
MIB = 1 << 20
# chat's history file in the attack run (set by main).
STORE_DB = ""
# echo's --receive-budget in the attack run.
ECHO_RECEIVE_BUDGET = 32 * MIB


def log(*args):
    print(*args, flush=True)


class Results:
    def __init__(self, runtime):
        self.runtime = runtime
        self.failed = []

    def check(self, name, ok, measured, threshold):
        verdict = "ok" if ok else "FAIL"
        log(f"[{self.runtime}] {name}: {measured} (threshold {threshold}) {verdict}")
        if not ok:
            self.failed.append(name)


class Server:
    """A program under attack: started, its `listening` line parsed, its
    output drained (never left to fill a pipe), its RSS read."""

    def __init__(self, proc, ports):
        self.proc = proc
        self.ports = ports

    @classmethod
    async def start(cls, argv, env=None, cwd=None):
        full_env = dict(os.environ)
        full_env.update(env or {})
        proc = await asyncio.create_subprocess_exec(
            *argv, env=full_env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        line = b""
        deadline = time.monotonic() + 15
        while b"listening" not in line:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                proc.kill()
                raise RuntimeError(f"{argv[0]}: no listening line")
            line = await asyncio.wait_for(proc.stdout.readline(), remaining)
            if not line:
                raise RuntimeError(f"{argv[0]} exited: {await proc.stderr.read()!r}")
        ports = [int(p) for p in re.findall(rb":(\d+)", line)]
        server = cls(proc, ports)
        server.drains = [asyncio.ensure_future(drain(proc.stdout)),
                         asyncio.ensure_future(drain(proc.stderr))]
        return server

    def rss(self):
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    async def settle_rss(self, seconds=1.0):
        await asyncio.sleep(seconds)
        return self.rss()

    async def stop(self):
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except asyncio.TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        for task in self.drains:
            task.cancel()


async def drain(stream):
    while await stream.read(65536):
        pass


async def open_conn(port, source="127.0.0.1"):
    return await asyncio.wait_for(
        asyncio.open_connection("127.0.0.1", port, local_addr=(source, 0)), 5)


def close_conn(writer):
    try:
        writer.close()
    except Exception:  # noqa: BLE001 - an attacker does not care
        pass


# ---- WebSocket bytes -------------------------------------------------------

def upgrade(path="/", deflate=False):
    head = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: 13\r\n")
    if deflate:
        head += "Sec-WebSocket-Extensions: permessage-deflate\r\n"
    return (head + "\r\n").encode()


def frame(opcode, payload, fin=True, rsv1=False):
    """A masked client frame."""
    b0 = (0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", b0, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", b0, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", b0, 0x80 | 127, n)
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload)) if n < 4096 else \
        (int.from_bytes(payload, "big") ^ int.from_bytes((mask * (n // 4 + 1))[:n], "big")).to_bytes(n, "big")
    return head + mask + masked


def text(value):
    return frame(0x1, value.encode())


async def handshake(reader, writer, deflate=False):
    writer.write(upgrade(deflate=deflate))
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    if not head.startswith(b"HTTP/1.1 101"):
        raise RuntimeError(f"upgrade refused: {head[:60]!r}")
    return head


async def read_frame(reader):
    """(opcode, payload) of the next server frame (unmasked); fragments are
    joined. Close frames are returned as opcode 8."""
    message, first = b"", None
    while True:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        payload = await reader.readexactly(n)
        opcode = b0 & 0x0F
        if opcode >= 0x8:
            if opcode == 0x8:
                return 8, payload
            continue
        first = first if opcode == 0 else opcode
        message += payload
        if b0 & 0x80:
            return first, message


async def ws_client(port, source="127.0.0.1"):
    reader, writer = await open_conn(port, source)
    await handshake(reader, writer)
    opcode, welcome = await asyncio.wait_for(read_frame(reader), 5)
    return reader, writer


def join(room):
    return text(json.dumps({"type": "room.join", "payload": {"room": room}}))


async def until_text(reader, predicate, seconds):
    """Read until a text message satisfies `predicate`; None on close or
    timeout; raises on nothing."""
    deadline = time.monotonic() + seconds
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        try:
            opcode, payload = await asyncio.wait_for(read_frame(reader), remaining)
        except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return None
        if opcode == 8:
            return ("close", payload)
        if opcode == 1 and predicate(payload.decode(errors="replace")):
            return ("text", payload.decode(errors="replace"))


async def time_to_cut(reader, writer, feed, bound):
    """Seconds until the server ends the connection while `feed` dribbles
    bytes; None when not cut within `bound`."""
    start = time.monotonic()

    async def watch():
        try:
            while await reader.read(4096):
                pass
        except ConnectionError:
            pass
        return time.monotonic() - start

    watcher = asyncio.ensure_future(watch())
    feeder = asyncio.ensure_future(feed(writer))
    done, _ = await asyncio.wait({watcher}, timeout=bound)
    feeder.cancel()
    close_conn(writer)
    if watcher in done:
        return watcher.result()
    watcher.cancel()
    return None


# ---- HTTP bytes ------------------------------------------------------------

def post_send(envelope):
    body = json.dumps(envelope, separators=(",", ":")).encode()
    return (f"POST /ws/send HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


async def read_statuses(reader, count, seconds):
    """Statuses of `count` pipelined responses (fewer on close/timeout)."""
    statuses = []
    deadline = time.monotonic() + seconds
    try:
        while len(statuses) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), remaining)
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
            if length:
                await asyncio.wait_for(reader.readexactly(int(length.group(1))), remaining)
            statuses.append(status)
    except (asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    return statuses


async def http_status(port, request, source="127.0.0.1"):
    reader, writer = await open_conn(port, source)
    writer.write(request)
    await writer.drain()
    statuses = await read_statuses(reader, 1, 10)
    close_conn(writer)
    return statuses[0] if statuses else None


# ---- the checks ------------------------------------------------------------

async def slowloris(res, chat):
    """A head sent a byte a second is cut by the handshake deadline."""
    reader, writer = await open_conn(chat.ports[1])

    async def feed(w):
        for byte in upgrade():
            w.write(bytes([byte]))
            await w.drain()
            await asyncio.sleep(1)

    cut = await time_to_cut(reader, writer, feed, 20)
    res.check("slowloris head: time to cut", cut is not None and cut <= 12,
              f"{cut:.1f} s" if cut else "not cut in 20 s", "<= 12 s")


async def drip(res, chat):
    """After the handshake, a frame dripped at 1 byte/s is cut within the
    per-message receive deadline (defect 8)."""
    reader, writer = await ws_client(chat.ports[1])
    data = frame(0x1, b"x" * 100)

    async def feed(w):
        for byte in data:
            w.write(bytes([byte]))
            await w.drain()
            await asyncio.sleep(1)

    bound = RECEIVE_TIMEOUT + 10
    cut = await time_to_cut(reader, writer, feed, bound)
    res.check(f"drip frame 1 B/s: time to cut ({RECEIVE_TIMEOUT_KEY}={RECEIVE_TIMEOUT})",
              cut is not None and cut <= RECEIVE_TIMEOUT + 3,
              f"{cut:.1f} s" if cut else f"not cut in {bound} s", f"<= {RECEIVE_TIMEOUT + 3} s")


def unfinished_deflate(size):
    """The first frame of a compressed message of `size` zero bytes, not
    final (the rest never comes)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    data = comp.compress(b"\0" * size) + comp.flush(zlib.Z_SYNC_FLUSH)
    return frame(0x2, data, fin=False, rsv1=True)


async def deflate_cut(res, chat):
    """A half-finished compressed message is cut within the deadline."""
    reader, writer = await open_conn(chat.ports[1])
    head = await handshake(reader, writer, deflate=True)
    if b"permessage-deflate" not in head:
        res.check("half-finished deflate message: negotiated", False, "not negotiated", "deflate")
        return

    async def feed(w):
        w.write(unfinished_deflate(1000))
        await w.drain()
        await asyncio.sleep(3600)

    bound = RECEIVE_TIMEOUT + 10
    cut = await time_to_cut(reader, writer, feed, bound)
    res.check("half-finished deflate message: time to cut",
              cut is not None and cut <= RECEIVE_TIMEOUT + 3,
              f"{cut:.1f} s" if cut else f"not cut in {bound} s", f"<= {RECEIVE_TIMEOUT + 3} s")


async def deflate_memory(res, echo):
    """Unfinished compressed messages (~15 KB on the wire, ~15 MiB inflated)
    on 20 connections to echo with a 32 MiB receive budget: what they hold
    together stays within the budget, the connections past it are closed
    (defect 6)."""
    conns = 20
    before = echo.rss()
    held = []
    payload = unfinished_deflate(15 * MIB)
    for _ in range(conns):
        reader, writer = await open_conn(echo.ports[0])
        await handshake(reader, writer, deflate=True)
        writer.write(payload)
        await writer.drain()
        held.append(writer)
    after = await echo.settle_rss(1.5)
    for writer in held:
        close_conn(writer)
    growth = after - before
    limit = ECHO_RECEIVE_BUDGET + 16 * MIB
    res.check("unfinished deflate messages: RSS growth, 20 connections",
              growth <= limit,
              f"{growth / MIB:.1f} MiB ({len(payload)} B sent each)",
              f"<= {limit // MIB} MiB: the {ECHO_RECEIVE_BUDGET // MIB} MiB receive budget + 16")


async def pipelined_http(res, chat):
    """A long poll, then 64 KiB of pipelined `GET /`, on connections that
    never read (defect 1)."""
    conns = 8
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    poll = b"GET /ws/poll?session_id=room:attack&timeout=3 HTTP/1.1\r\nHost: a\r\n\r\n"
    burst = poll + request * (65536 // len(request))
    before = chat.rss()
    held = []
    for _ in range(conns):
        _, writer = await open_conn(chat.ports[0])
        writer.write(burst)
        held.append(writer)
    after = await chat.settle_rss(4)
    # Still served meanwhile: a health check answers.
    started = time.monotonic()
    status = await http_status(chat.ports[0], b"GET /api/health HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    latency = time.monotonic() - started
    for writer in held:
        close_conn(writer)
    per = (after - before) / conns
    res.check("pipelined HTTP to a non-reading client: RSS growth per connection",
              per <= 512 * 1024, f"{per / 1024:.0f} KiB ({len(burst)} B sent each)", "<= 512 KiB")
    res.check("pipelined HTTP: /api/health meanwhile", status == 200 and latency <= 1,
              f"{status} in {latency * 1000:.0f} ms", "200 within 1000 ms")


async def send_memory(res, chat):
    """`POST /ws/send` of 60 KB `[0,0,..]` payloads queued for one session:
    memory at most twice what was sent (defect 2)."""
    posts = 100
    body = {"type": "attack", "session_id": "attack-queue", "payload": [0] * 30000}
    request = post_send(body)
    before = chat.rss()
    reader, writer = await open_conn(chat.ports[0])
    writer.write(request * posts)
    await writer.drain()
    statuses = await read_statuses(reader, posts, 20)
    close_conn(writer)
    after = await chat.settle_rss(1.0)
    sent = len(request) * posts
    ratio = (after - before) / sent
    res.check("POST /ws/send queued for a session: RSS growth per byte sent", ratio <= 2,
              f"{ratio:.1f}x ({sent // 1024} KiB sent, statuses {sorted(set(statuses))})", "<= 2x")


def stored_texts(db, room):
    """The texts of `room`'s messages in chat's history file."""
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
        rows = conn.execute("SELECT payload FROM messages WHERE room = ?", (room,)).fetchall()
    return {json.loads(payload).get("text") for (payload,) in rows}


async def lost_after_202(res, chat):
    """A flood of `POST /ws/send` to a room: every message answered 202 is
    in the room's history (what the 202 promises: the store took it), no
    message refused is, and refusals are 503 or 429, never a false 202
    (defect 3). A WebSocket member reads along; being closed 1013 as a slow
    consumer under the flood is the outbound-queue policy (it resumes with
    `since`), so it is reported, not failed."""
    room = "flood"
    reader, writer = await ws_client(chat.ports[1])
    writer.write(join(room))
    await writer.drain()
    if await until_text(reader, lambda t: t == f"joined room: {room}", 5) is None:
        res.check("/ws/send flood: join", False, "no joined line", "joined")
        return
    conns, per = 8, 1500

    async def flood(c):
        r, w = await open_conn(chat.ports[0])
        w.write(b"".join(post_send({"type": "chat.message", "room": room,
                                    "payload": {"text": f"m{c}-{i}"}}) for i in range(per)))
        await w.drain()
        statuses = await read_statuses(r, per, 30)
        close_conn(w)
        return [(f"m{c}-{i}", status) for i, status in enumerate(statuses)]

    delivered, closed = 0, None

    async def count():
        # Counted in the raw stream (parsing frame by frame in Python is
        # slow); a close frame ends it.
        nonlocal delivered, closed
        pattern, carry = f"room {room}: m".encode(), b""
        while True:
            try:
                chunk = await asyncio.wait_for(reader.read(1 << 16), 3)
            except (asyncio.TimeoutError, ConnectionError):
                return
            if not chunk:
                return
            data = carry + chunk
            delivered += data.count(pattern)
            if b"\x88\x02\x03\xf5" in data or b"\x88\x0f\x03\xf5" in data:
                closed = "1013"
            carry = data[-(len(pattern) - 1):]

    counter = asyncio.ensure_future(count())
    answers = [a for r in await asyncio.gather(*(flood(c) for c in range(conns))) for a in r]
    await counter
    close_conn(writer)
    accepted = {text for text, status in answers if status == 202}
    refused = {text for text, status in answers if status != 202}
    stored = set()
    for _ in range(40):  # the store worker may still be writing: up to 10 s
        stored = stored_texts(STORE_DB, room)
        if accepted <= stored:
            break
        await asyncio.sleep(0.25)
    lost = len(accepted - stored)
    stored_refused = len(refused & stored)
    honest = all(status in (202, 429, 503) for _, status in answers)
    res.check("/ws/send flood: messages lost after 202",
              lost == 0 and stored_refused == 0 and honest and len(answers) == conns * per,
              f"{lost} lost, {stored_refused} refused yet stored ({len(accepted)} accepted, "
              f"{len(answers)}/{conns * per} answered, statuses "
              f"{sorted({status for _, status in answers})}; member read {delivered} live"
              + (f", then closed {closed}" if closed else "") + ")",
              "0 lost, 0 refused yet stored, refusals 429/503")


async def lockout(res, chat):
    """10 000 long-poll sessions from one address (127.0.0.2) do not lock a
    fresh client (127.0.0.1) out, nor `room:general` (defect 4)."""
    conns, per = 10, 1000

    async def fill(c):
        r, w = await open_conn(chat.ports[0], "127.0.0.2")
        w.write(b"".join(f"GET /ws/poll?session_id=lock-{c}-{i}&timeout=0 HTTP/1.1\r\nHost: a\r\n\r\n".encode()
                         for i in range(per)))
        await w.drain()
        statuses = await read_statuses(r, per, 30)
        close_conn(w)
        return statuses

    filled = [s for r in await asyncio.gather(*(fill(c) for c in range(conns))) for s in r]
    fresh = await http_status(chat.ports[0], b"GET /ws/poll?session_id=fresh-client&timeout=0 HTTP/1.1\r\nHost: a\r\n\r\n")
    room = await http_status(chat.ports[0], b"GET /ws/poll?session_id=room:general&timeout=0 HTTP/1.1\r\nHost: a\r\n\r\n")
    res.check("long-poll session cap: a fresh client after 10 000 sessions from another address",
              fresh == 200 and room == 200,
              f"fresh {fresh}, room:general {room} (attacker: {filled.count(200)} x 200)", "200 and 200")


async def history_reader(res, chat):
    """A reading client asking 100 x 60 KB of history is not closed 1013
    (defect 5)."""
    room = "hist"
    reader, writer = await ws_client(chat.ports[1])
    writer.write(join(room))
    await writer.drain()
    await until_text(reader, lambda t: t == f"joined room: {room}", 5)
    big = "h" * 60000
    for _ in range(100):
        writer.write(text(json.dumps({"type": "chat.message", "payload": {"room": room, "text": big}})))
    await writer.drain()
    got = 0
    while got < 100 and await until_text(reader, lambda t: t.startswith(f"room {room}: h"), 10):
        got += 1
    close_conn(writer)
    reader, writer = await ws_client(chat.ports[1])
    writer.write(text(json.dumps({"type": "room.history", "payload": {"room": room, "limit": 100}})))
    await writer.drain()
    answer = await until_text(reader, lambda t: '"room.history"' in t[:40], 15)
    close_conn(writer)
    if answer and answer[0] == "close":
        code = struct.unpack("!H", answer[1][:2])[0] if len(answer[1]) >= 2 else None
        figure = f"closed {code} {answer[1][2:].decode(errors='replace')!r}"
    else:
        figure = "history answered" if answer else "no answer in 15 s"
    res.check("room.history of 100 x 60 KB to a reading client", answer is not None and answer[0] == "text",
              f"{figure} ({got}/100 stored)", "answered, not 1013")


async def room_joins(res, chat):
    """1500 joins of 120-byte room names on one connection: refused past
    WEBSOCKET_MAX_ROOMS, memory bounded (defect 7)."""
    reader, writer = await ws_client(chat.ports[1])
    before = chat.rss()
    for i in range(1500):
        writer.write(join(f"r{i:05}-" + "x" * 114))
    await writer.drain()
    joined = refused = 0
    while joined + refused < 1500:
        answer = await until_text(reader, lambda t: t.startswith("joined room:") or "room_limit" in t, 5)
        if answer is None or answer[0] == "close":
            break
        if answer[1].startswith("joined"):
            joined += 1
        else:
            refused += 1
    after = await chat.settle_rss(0.5)
    close_conn(writer)
    limit = int(CHAT_ENV["WEBSOCKET_MAX_ROOMS"])
    growth = after - before
    res.check("1500 room joins on one connection", joined <= limit and growth <= 4 * MIB,
              f"{joined} joined, {refused} refused, RSS +{growth / 1024:.0f} KiB",
              f"<= {limit} joined, <= 4096 KiB")


CHECKS = {
    "timeouts": None,  # slowloris, drip and deflate_cut, run beside the rest
    "pipelined_http": pipelined_http,
    "send_memory": send_memory,
    "lost_after_202": lost_after_202,
    "lockout": lockout,
    "history_reader": history_reader,
    "room_joins": room_joins,
    "deflate_memory": deflate_memory,
}


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runtime", required=True)
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--only", default="")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    wanted = [name for name in CHECKS if not only or name in only]
    res = Results(args.runtime)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    store = tempfile.mkdtemp(prefix="hubbub-attack-")
    global STORE_DB
    STORE_DB = os.path.join(store, "chat.db")
    chat = await Server.start(
        [os.path.join(args.bin_dir, "chat"), "--runtime", args.runtime],
        env={**CHAT_ENV, "STORE_PATH": STORE_DB},
        cwd=os.path.join(root, "examples", "chat"))
    echo = await Server.start(
        [os.path.join(args.bin_dir, "echo"), "--runtime", args.runtime, "--deflate", "--port", "0",
         "--receive-budget", str(ECHO_RECEIVE_BUDGET)])
    try:
        timers = None
        if "timeouts" in wanted:
            timers = asyncio.gather(slowloris(res, chat), drip(res, chat), deflate_cut(res, chat))
        for name in wanted:
            if CHECKS[name] is None:
                continue
            server = echo if name == "deflate_memory" else chat
            try:
                await asyncio.wait_for(CHECKS[name](res, server), 60)
            except Exception as error:  # noqa: BLE001 - reported as a failure
                res.check(name, False, f"error: {error!r}", "no error")
        if timers is not None:
            await timers
    finally:
        await chat.stop()
        await echo.stop()
        shutil.rmtree(store, ignore_errors=True)
    if res.failed:
        log(f"[{args.runtime}] failed: {', '.join(res.failed)}")
    return 1 if res.failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
