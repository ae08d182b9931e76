"""Python `websockets` client against several hubbub `chat` nodes that share
rooms through Redis (`REDIS_URL`).

usage: multinode.py --chat BIN --redis-server PATH --redis-cli PATH --dir DIR

It starts the processes itself, so that it can kill and restart them: a
`redis-server` on a free loopback port (AOF, `appendfsync always`, its data
in DIR), and three `chat` nodes on free ports: `a` (tokio), `b` (smol) and
`c` (mio), each with `NODE_ID`, `REDIS_URL` and `PRESENCE_TTL=3`, each
logging to its own file in DIR. Every process it started is listed in
DIR/pids (one pid a line) and killed when it exits, however it exits.
Then the scenarios, each printing a line; the first mismatch stops it
with `multinode: FAILED: <scenario>: <what was expected, what arrived>`
and exit 1:

  a. fan-out: a client on each node joins `fan`; a message sent on each
     node reaches the three clients; `room.presence` on every node lists
     the three, one per node; a message published right after a member's
     `joined room:` (in a room new to its node) reaches it, 10 rounds.
  b. one order: three publishers (one per node, not members) send 50
     acknowledged messages each, concurrently, into `order`; a subscriber
     on each node receives 150 lines, the same sequence on all three, in
     ack-offset order; the offsets are 1..150, each once; `room.history`
     on every node lists them in that order with those ids; a retried id
     is acked with its first offset and not delivered again.
  c. resume across nodes after kill -9: a subscriber on b has seen up to
     offset X; b is killed with SIGKILL; a publisher on a goes on sending;
     b's presence entries vanish from `room.presence` on a within
     PRESENCE_TTL + 2 s; the subscriber reconnects to c with `since: X`
     (while the publisher still sends) and gets exactly X+1.. once each
     and in order (replayed envelopes, `room.resumed` complete, then live
     lines). b is restarted afterwards.
  d. Redis killed (SIGKILL) and restarted (same port, same AOF) in the
     middle of a flood of acknowledged messages from a: `not_stored`
     errors are allowed while it is down; every acked message is then in
     `room.history` (on a and c) with its offset; live delivery to a
     subscriber on b works again; a resume with `since` on c is complete.
  e. Redis unreachable at start-up: a fourth node `d` with `REDIS_URL` on
     a port where nothing listens starts and serves (welcome, join); a
     message is answered `message rejected: ...` naming Redis, not a hang;
     once a redis-server listens on that port, messages on `d` work again
     within 15 s (acked, and received by a member).

Every wait has a time limit; loopback only.
"""
import argparse
import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

from websockets.asyncio.client import connect

PRESENCE_TTL = 3
WELCOME = "welcome to hubbub chat"


class Failed(Exception):
    """A mismatch: the message says what was expected and what arrived."""


def check(cond, what):
    if not cond:
        raise Failed(what)


def short(messages, keep=6):
    """The last few messages of a list, each cut to 200 characters."""
    cut = [m if len(m) <= 200 else m[:200] + "..." for m in messages[-keep:]]
    more = f" (and {len(messages) - keep} before)" if len(messages) > keep else ""
    return f"{cut}{more}"


def parse(message):
    """The JSON object of a text message, else None."""
    if not isinstance(message, str) or not message.startswith("{"):
        return None
    try:
        value = json.loads(message)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tail(path, lines=15):
    try:
        with open(path, "rb") as f:
            text = f.read().decode("utf-8", "replace")
    except OSError as error:
        return f"({path}: {error})"
    return "\n".join(text.splitlines()[-lines:])


class Cluster:
    """The processes this script started: redis-servers and chat nodes."""

    def __init__(self, args):
        self.chat = args.chat
        self.redis_server = args.redis_server
        self.redis_cli = args.redis_cli
        self.dir = args.dir
        self.procs = []
        self.starts = {}
        self.pidfile = open(os.path.join(self.dir, "pids"), "a")

    def spawn(self, name, argv, env=None):
        n = self.starts[name] = self.starts.get(name, 0) + 1
        log = os.path.join(self.dir, f"{name}-{n}.log")
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, cwd=self.dir,
            )
        proc.log = log
        self.procs.append(proc)
        self.pidfile.write(f"{proc.pid}\n")
        self.pidfile.flush()
        return proc

    async def kill9(self, proc):
        proc.kill()
        for _ in range(100):
            if proc.poll() is not None:
                return
            await asyncio.sleep(0.05)
        raise Failed(f"pid {proc.pid} still running 5 s after SIGKILL")

    async def ping(self, port):
        try:
            cli = await asyncio.create_subprocess_exec(
                self.redis_cli, "-h", "127.0.0.1", "-p", str(port), "ping",
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            )
        except OSError as error:
            raise Failed(f"redis-cli: {error}")
        try:
            out, _ = await asyncio.wait_for(cli.communicate(), 3)
        except asyncio.TimeoutError:
            cli.kill()
            await cli.wait()
            return False
        return out.strip() == b"PONG"

    async def start_redis(self, port, data):
        """redis-server on 127.0.0.1:port with its AOF in `data`; returns
        once `redis-cli ping` answers PONG (10 s at most)."""
        os.makedirs(data, exist_ok=True)
        proc = self.spawn(f"redis-{port}", [
            self.redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "yes", "--appendfsync", "always", "--dir", data,
        ])
        deadline = time.monotonic() + 10
        while True:
            if proc.poll() is not None:
                raise Failed(f"redis-server on port {port} exited with {proc.returncode}:\n{tail(proc.log)}")
            if await self.ping(port):
                return proc
            if time.monotonic() > deadline:
                raise Failed(f"redis-server on port {port}: no PONG within 10 s:\n{tail(proc.log)}")
            await asyncio.sleep(0.1)

    async def start_node(self, name, runtime, redis_url):
        """`chat --runtime RUNTIME` as node NAME; returns once its log names
        its ws:// URL (15 s at most), with `.url` and `.node` set."""
        env = dict(os.environ)
        env.update(
            WEBSOCKET_HOST="127.0.0.1", WEBSOCKET_PORT="0", SERVER_HOST="127.0.0.1",
            SERVER_PORT="0", STORE_PATH=os.path.join(self.dir, f"node-{name}.db"),
            NODE_ID=name, REDIS_URL=redis_url, PRESENCE_TTL=str(PRESENCE_TTL),
            PRESENCE_EVENTS="false", AUTH_REQUIRED="false",
        )
        proc = self.spawn(f"node-{name}", [self.chat, "--runtime", runtime], env=env)
        deadline = time.monotonic() + 15
        while True:
            try:
                with open(proc.log, "rb") as f:
                    found = re.search(rb"ws://127\.0\.0\.1:(\d+)/", f.read())
            except OSError:
                found = None
            if found:
                proc.url = f"ws://127.0.0.1:{found.group(1).decode()}/"
                proc.node = name
                return proc
            if proc.poll() is not None:
                raise Failed(f"node {name} ({runtime}) exited with {proc.returncode} at start-up:\n{tail(proc.log)}")
            if time.monotonic() > deadline:
                raise Failed(f"node {name} ({runtime}) printed no ws:// URL within 15 s:\n{tail(proc.log)}")
            await asyncio.sleep(0.1)

    def stop_all(self):
        """SIGTERM to every process still running, SIGKILL 3 s later."""
        running = [p for p in self.procs if p.poll() is None]
        for p in running:
            try:
                p.terminate()
            except OSError:
                pass
        deadline = time.monotonic() + 3
        for p in running:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


class Client:
    """One WebSocket connection; what it receives is kept in `inbox`, in
    order, until a `take` removes it."""

    def __init__(self, name, ws):
        self.name = name
        self.ws = ws
        self.inbox = []
        self.closed = None
        self.arrived = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def open(cls, name, url):
        try:
            ws = await asyncio.wait_for(connect(url, open_timeout=10, max_size=None), 15)
        except Exception as error:  # noqa: BLE001 - the failure is the finding
            raise Failed(f"{name}: cannot connect to {url}: {error!r}")
        client = cls(name, ws)
        await client.take(lambda m: m == WELCOME, 10, f"`{WELCOME}`")
        return client

    async def _read(self):
        try:
            async for message in self.ws:
                self.inbox.append(message)
                self.arrived.set()
        except Exception as error:  # noqa: BLE001 - kept, reported by take
            self.closed = repr(error)
        else:
            self.closed = "closed"
        finally:
            self.arrived.set()

    async def close(self):
        try:
            await asyncio.wait_for(self.ws.close(), 5)
        except Exception:  # noqa: BLE001 - closing a dead connection
            pass
        self.reader.cancel()

    async def take(self, pred, timeout, what):
        """Remove and return the first message that `pred` accepts, waiting
        at most `timeout` seconds for it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            for i, message in enumerate(self.inbox):
                if pred(message):
                    return self.inbox.pop(i)
            if self.closed is not None:
                raise Failed(
                    f"{self.name}: connection ended ({self.closed}) while waiting for {what}; "
                    f"unmatched: {short(self.inbox)}")
            left = deadline - loop.time()
            if left <= 0:
                raise Failed(f"{self.name}: no {what} within {timeout} s; received meanwhile: {short(self.inbox)}")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass

    async def next(self, timeout, what):
        return await self.take(lambda m: True, timeout, what)

    async def send(self, value):
        text = value if isinstance(value, str) else json.dumps(value)
        try:
            await asyncio.wait_for(self.ws.send(text), 10)
        except Exception as error:  # noqa: BLE001 - the failure is the finding
            raise Failed(f"{self.name}: cannot send {text[:200]}: {error!r}")

    async def join(self, room):
        await self.send({"type": "room.join", "payload": {"room": room}})
        await self.take(lambda m: m == f"joined room: {room}", 10, f"`joined room: {room}`")

    async def say(self, room, text, id=None):
        envelope = {"type": "chat.message", "payload": {"room": room, "text": text}}
        if id is not None:
            envelope["id"] = id
        await self.send(envelope)

    async def answer(self, id, timeout=15):
        """The `ack` or `error` answering client message id `id`."""
        def pred(m):
            v = parse(m)
            return v is not None and v.get("id") == id and v.get("type") in ("ack", "error")
        return parse(await self.take(pred, timeout, f"ack or error for id {id!r}"))

    async def line(self, room, text, timeout=10):
        want = f"room {room}: {text}"
        return await self.take(lambda m: m == want, timeout, f"`{want}`")

    async def reply(self, kind, room, timeout=10):
        def pred(m):
            v = parse(m)
            return v is not None and v.get("type") == kind and (v.get("payload") or {}).get("room") == room
        return parse(await self.take(pred, timeout, f"{kind} reply for room {room!r}"))

    async def presence(self, room):
        await self.send({"type": "room.presence", "payload": {"room": room}})
        members = (await self.reply("room.presence", room))["payload"].get("members")
        check(isinstance(members, list), f"{self.name}: room.presence members not a list: {members!r}")
        return members

    async def history(self, room, limit):
        await self.send({"type": "room.history", "payload": {"room": room, "limit": limit}})
        return (await self.reply("room.history", room))["payload"]


def acked_offset(client, answer, what):
    check(answer["type"] == "ack", f"{client.name}: {what}: expected an ack, got {answer}")
    offset = answer.get("payload", {}).get("offset")
    check(isinstance(offset, int) and not isinstance(offset, bool) and offset > 0,
          f"{client.name}: {what}: ack offset not a positive integer: {answer}")
    return offset


def check_envelope(env, room, where):
    check(isinstance(env, dict) and env.get("type") == "chat.message", f"{where}: not a chat.message envelope: {env}")
    check(isinstance(env.get("id"), str) and env["id"].isdigit(), f"{where}: envelope id not a decimal string: {env}")
    check(env.get("room") == room and (env.get("payload") or {}).get("room") == room,
          f"{where}: envelope of another room (expected {room!r}): {env}")
    return int(env["id"]), env["payload"].get("text")


async def wait_presence(client, room, want, timeout, what):
    """Poll `room.presence` until `want(members)` holds."""
    deadline = time.monotonic() + timeout
    while True:
        members = await client.presence(room)
        if want(members):
            return members
        if time.monotonic() > deadline:
            raise Failed(f"{client.name}: room.presence {room}: {what} within {timeout} s; last answer: {members}")
        await asyncio.sleep(0.25)


# ---------------------------------------------------------------- scenarios

async def fan_out(nodes):
    room = "fan"
    clients = [await Client.open(f"fan-{n.node}", n.url) for n in nodes]
    for c in clients:
        await c.join(room)
    for sender in clients:
        text = f"hello from {sender.name}"
        await sender.say(room, text)
        for c in clients:
            await c.line(room, text)
    by_node = {}
    for c, n in zip(clients, nodes):
        members = await wait_presence(
            c, room, lambda ms: len(ms) == 3, 5, "3 members (one per node)")
        check(sorted(m.get("node") for m in members) == ["a", "b", "c"],
              f"{c.name}: room.presence nodes: expected a, b, c; got {members}")
        check(all(m.get("user") is None and m.get("id") is not None for m in members),
              f"{c.name}: room.presence entries: expected id and user null; got {members}")
        by_node[n.node] = members
    check(by_node["a"] == by_node["b"] == by_node["c"],
          f"room.presence differs between nodes: {by_node}")
    # A member is a member from its `joined room:` on: a message published
    # right after it (here from a, to a member on b and one on c, each in
    # a room new to its node) reaches it.
    for k in range(10):
        fresh = f"fan-{k}"
        for member in clients[1:]:
            await member.join(fresh)
        await clients[0].say(fresh, "at once", id=fresh)
        offset = acked_offset(clients[0], await clients[0].answer(fresh), f"message to {fresh}")
        for member in clients[1:]:
            try:
                await member.line(fresh, "at once", 5)
            except Failed:
                raise Failed(f"{member.name} joined room {fresh} (`joined room: {fresh}` received), then "
                             f"{clients[0].name} published `at once` there (acked, offset {offset}): the member "
                             f"never received `room {fresh}: at once` (round {k + 1} of 10)")
    for c in clients:
        await c.close()
    print("a. fan-out: a message sent on each of a, b, c reached the clients on all three; "
          "presence lists the three members alike on every node; a message published right after "
          "`joined room:` reached the new members on b and c (10 fresh rooms)")


async def one_order(nodes):
    room, per = "order", 50
    subs = [await Client.open(f"order-sub-{n.node}", n.url) for n in nodes]
    for s in subs:
        await s.join(room)
    pubs = [await Client.open(f"order-pub-{n.node}", n.url) for n in nodes]
    offsets = {}  # text -> offset

    async def publish(pub, tag):
        texts = [f"{tag}-{i}" for i in range(per)]
        for text in texts:
            await pub.say(room, text, id=text)
        for text in texts:
            offsets[text] = acked_offset(pub, await pub.answer(text, 30), f"message {text}")

    await asyncio.gather(*(publish(p, n.node) for p, n in zip(pubs, nodes)))
    total = per * len(nodes)
    got = sorted(offsets.values())
    dupes = sorted({o for o in got if got.count(o) > 1})
    check(not dupes, f"ack offsets given to more than one message: {dupes}")
    check(got == list(range(1, total + 1)),
          f"ack offsets are not 1..{total}: missing {sorted(set(range(1, total + 1)) - set(got))}, "
          f"unexpected {sorted(set(got) - set(range(1, total + 1)))}")
    by_offset = sorted(offsets, key=offsets.get)

    async def collect(s):
        seq, deadline = [], time.monotonic() + 20
        while len(seq) < total and time.monotonic() < deadline:
            try:
                line = await s.take(lambda m: m.startswith(f"room {room}: "), 1, "line")
            except Failed:
                continue
            seq.append(line[len(f"room {room}: "):])
        return seq

    seqs = await asyncio.gather(*(collect(s) for s in subs))
    problems = []
    for s, seq in zip(subs, seqs):
        missing = sorted((offsets[t], t) for t in set(offsets) - set(seq))
        dup = sorted({t for t in seq if seq.count(t) > 1})
        if missing or dup or len(seq) != total:
            problems.append(f"{s.name} received {len(seq)} of {total} lines within 20 s; missing (offset, text): "
                            f"{missing[:20]}; duplicated: {dup[:10]}; last received: {seq[-5:]}")
    check(not problems, "; ".join(problems) + f"; the other subscribers received {[len(q) for q in seqs]}")
    for s in subs:
        extra = [m for m in s.inbox if m.startswith(f"room {room}: ")]
        check(not extra, f"{s.name}: more than {total} lines: {short(extra)}")
    for s, seq in zip(subs[1:], seqs[1:]):
        if seq != seqs[0]:
            i = next(i for i, (x, y) in enumerate(zip(seqs[0], seq)) if x != y)
            raise Failed(f"{subs[0].name} and {s.name} saw different orders: first difference at line {i + 1}: "
                         f"{seqs[0][i:i + 5]} vs {seq[i:i + 5]}")
    if seqs[0] != by_offset:
        i = next(i for i, (x, y) in enumerate(zip(by_offset, seqs[0])) if x != y)
        raise Failed(f"delivery order is not ack-offset order: at position {i + 1} offset order has "
                     f"{by_offset[i:i + 5]} ({[offsets[t] for t in by_offset[i:i + 5]]}), delivered "
                     f"{seqs[0][i:i + 5]} ({[offsets[t] for t in seqs[0][i:i + 5]]})")

    for s in subs:
        payload = await s.history(room, 500)
        listed = [check_envelope(e, room, f"{s.name} history") for e in payload.get("messages", [])]
        check(listed == [(offsets[t], t) for t in by_offset],
              f"{s.name}: room.history {room}: expected ids 1..{total} with their texts in offset order; "
              f"got {len(listed)} entries, first difference "
              f"{next(((i, a, b) for i, (a, b) in enumerate(zip(listed, [(offsets[t], t) for t in by_offset])) if a != b), 'in length')}")
        check(payload.get("more") is False, f"{s.name}: room.history {room}: more should be false: {payload.get('more')}")
    # A retry of an acked id (same session) is acked with the first offset
    # and not delivered again: the next line every subscriber gets is the
    # message sent after it.
    retried = "b-7"
    await pubs[1].say(room, retried, id=retried)
    again = await pubs[1].answer(retried)
    check(again.get("type") == "ack" and again.get("payload", {}).get("offset") == offsets[retried],
          f"{pubs[1].name}: retry of id {retried}: expected the ack with offset {offsets[retried]}; got {again}")
    await pubs[1].say(room, "after the retry", id="after-retry")
    acked_offset(pubs[1], await pubs[1].answer("after-retry"), "message after-retry")
    for s in subs:
        line = await s.take(lambda m: m.startswith(f"room {room}: "), 10, "the line after the retry")
        check(line == f"room {room}: after the retry",
              f"{s.name}: the retry of {retried} was delivered again (expected `room {room}: after the retry`, got `{line}`)")
    for c in subs + pubs:
        await c.close()
    print(f"b. one order: {total} acked messages from 3 publishers: offsets 1..{total} once each; "
          "the 3 subscribers saw one sequence, in offset order; room.history alike on every node; "
          "a retried id was acked with its first offset and not delivered again")


async def resume_after_kill(cluster, nodes, redis_url):
    a, b, c = nodes
    room = "resume"
    pub = await Client.open("resume-pub-a", a.url)
    watcher = await Client.open("resume-presence-a", a.url)
    sub = await Client.open("resume-sub-b", b.url)
    await sub.join(room)
    offsets = {}

    async def send(i):
        text = f"r-{i}"
        await pub.say(room, text, id=text)
        offsets[text] = acked_offset(pub, await pub.answer(text), f"message {text}")
        return text

    for i in range(10):
        text = await send(i)
        await sub.line(room, text)
    x = offsets["r-9"]
    await wait_presence(watcher, room, lambda ms: any(m.get("node") == "b" for m in ms), 5,
                        "an entry of node b (the subscriber)")

    killed = time.monotonic()
    await cluster.kill9(b)
    for i in range(10, 20):
        await send(i)
    members = await wait_presence(
        watcher, room, lambda ms: not any(m.get("node") == "b" for m in ms),
        PRESENCE_TTL + 2 - (time.monotonic() - killed), "node b's entries gone after its kill -9")
    gone_after = time.monotonic() - killed
    check(members == [] or all(m.get("node") != "b" for m in members), f"presence: {members}")

    # Reconnect to c and resume while the publisher keeps sending.
    sub2 = await Client.open("resume-sub-c", c.url)
    more = 20

    async def keep_sending():
        for i in range(20, 20 + more):
            await send(i)
            await asyncio.sleep(0.02)

    sending = asyncio.create_task(keep_sending())
    for _ in range(500):  # 10 s at most: 5 of them acked, the rest in flight
        if "r-24" in offsets or sending.done():
            break
        await asyncio.sleep(0.02)
    await sub2.send({"type": "room.join", "payload": {"room": room, "since": x}})
    await sub2.take(lambda m: m == f"joined room: {room}", 10, f"`joined room: {room}`")
    replayed = []
    while True:
        message = await sub2.next(10, "replayed envelopes, then room.resumed")
        v = parse(message)
        check(v is not None, f"{sub2.name}: before room.resumed, expected envelopes; got {message!r}")
        if v.get("type") == "room.resumed":
            resumed = v.get("payload", {})
            break
        replayed.append(check_envelope(v, room, f"{sub2.name} replay"))
    await sending
    ids = [i for i, _ in replayed]
    check(ids == list(range(x + 1, x + 1 + len(ids))),
          f"{sub2.name}: replay after {x}: expected contiguous ids {x + 1}.., got {ids}")
    for i, text in replayed:
        check(offsets.get(text) == i, f"{sub2.name}: replayed id {i} carries {text!r}, acked as {offsets.get(text)}")
    last = x + len(ids)
    check(resumed.get("complete") is True and resumed.get("since") == x and resumed.get("last_id") == last
          and resumed.get("replayed") == len(ids),
          f"{sub2.name}: room.resumed: expected complete true, since {x}, last_id {last}, replayed {len(ids)}; got {resumed}")
    check(len(ids) >= 10, f"{sub2.name}: the 10 messages sent during the outage were not all replayed: {ids}")
    final = max(offsets.values())
    live = []
    for off in range(last + 1, final + 1):
        text = next(t for t, o in offsets.items() if o == off)
        line = await sub2.take(lambda m: m.startswith(f"room {room}: "), 10,
                               f"live line for offset {off} ({text!r})")
        live.append(line[len(f"room {room}: "):])
        check(live[-1] == text, f"{sub2.name}: after room.resumed (last_id {last}) expected the live line of "
              f"offset {off} `{text}`; got `{live[-1]}` (offset {offsets.get(live[-1])}); live so far {live}")
    await pub.say(room, "r-end", id="r-end")
    offsets["r-end"] = acked_offset(pub, await pub.answer("r-end"), "message r-end")
    await sub2.line(room, "r-end")
    extra = [m for m in sub2.inbox if m.startswith(f"room {room}: ")]
    check(not extra, f"{sub2.name}: duplicate or unexpected lines: {short(extra)}")
    for cl in (pub, watcher, sub, sub2):
        await cl.close()
    print(f"c. resume: kill -9 of b at offset {x}; b's presence gone from a after {gone_after:.1f} s; "
          f"on c, since {x}: {len(ids)} replayed (ids {x + 1}..{last}), complete, then {len(live)} live "
          f"sent during the resume, once each, in order")
    return await cluster.start_node("b", "smol", redis_url)


async def redis_restart(cluster, nodes, redis):
    a, b, c = nodes
    room = "flood"
    pub = await Client.open("flood-pub-a", a.url)
    sub = await Client.open("flood-sub-b", b.url)
    await sub.join(room)
    acked, errors = {}, []  # offset -> text; (text, answer)
    state = {"redis": redis["proc"], "down": None, "up": None, "before": 0}

    async def outage():
        state["before"] = max(acked, default=0)
        state["down"] = time.monotonic()
        await cluster.kill9(state["redis"])
        await asyncio.sleep(2)
        state["redis"] = await cluster.start_redis(redis["port"], redis["dir"])
        state["up"] = time.monotonic()

    # 300 messages at least, and on until 20 are acked after Redis is back
    # (450 at most, fewer than room.history's limit of 500; 20 s at most).
    started, restart, acked_since_up = time.monotonic(), None, 0
    for i in range(450):
        if time.monotonic() - started > 20 or (i >= 300 and acked_since_up >= 20):
            break
        text = f"flood-{i}"
        await pub.say(room, text, id=text)
        answer = await pub.answer(text, 15)
        if answer["type"] == "ack":
            offset = acked_offset(pub, answer, f"message {text}")
            check(offset not in acked, f"offset {offset} acked for both {acked.get(offset)} and {text}")
            acked[offset] = text
            acked_since_up += state["up"] is not None
        else:
            check(answer.get("payload", {}).get("error") == "not_stored",
                  f"{pub.name}: {text}: expected ack or not_stored, got {answer}")
            check(state["down"] is not None,
                  f"{pub.name}: {text}: not_stored while Redis was up (before the kill): {answer}")
            errors.append((text, answer))
        if i == 100:
            restart = asyncio.create_task(outage())
        await asyncio.sleep(0.02)
    check(restart is not None, "the flood ended before message 100: Redis was never killed")
    await restart
    after = [o for o in acked if o > state["before"]]
    check(acked_since_up > 0, f"{pub.name}: no message of the flood was acked after Redis came back "
          f"({len(errors)} not_stored; the last: {errors[-1][1] if errors else None})")
    texts_in_history = set()
    for node_client in (pub, await Client.open("flood-history-c", c.url)):
        payload = await node_client.history(room, 500)
        listed = dict(check_envelope(e, room, f"{node_client.name} history") for e in payload.get("messages", []))
        texts_in_history |= set(listed.values())
        missing = [(o, t) for o, t in sorted(acked.items()) if listed.get(o) != t]
        check(not missing, f"{node_client.name}: acked messages missing from room.history (offset, text): "
              f"{missing[:10]}{' ...' if len(missing) > 10 else ''} (history holds {len(listed)})")
        history_ids = [int(e["id"]) for e in payload.get("messages", [])]
        check(history_ids == sorted(set(history_ids)), f"{node_client.name}: history ids not ascending once each")

    # Live delivery again, to the subscriber on b (retried: the nodes may
    # still be reconnecting).
    deadline, k, live_ok = time.monotonic() + 10, 0, None
    while live_ok is None and time.monotonic() < deadline:
        text = f"flood-live-{k}"
        k += 1
        await pub.say(room, text, id=text)
        answer = await pub.answer(text, 10)
        if answer["type"] == "ack":
            acked[acked_offset(pub, answer, text)] = text
            try:
                await sub.line(room, text, 3)
                live_ok = text
            except Failed:
                pass
        else:
            await asyncio.sleep(1)
    check(live_ok is not None, f"{sub.name}: no live message reached the subscriber on b within 10 s after "
          f"Redis came back; b received meanwhile: {short([m for m in sub.inbox if 'flood-live' in m])}")

    since = state["before"] - 5 if state["before"] > 5 else 0
    res = await Client.open("flood-resume-c", c.url)
    await res.send({"type": "room.join", "payload": {"room": room, "since": since}})
    await res.take(lambda m: m == f"joined room: {room}", 10, f"`joined room: {room}`")
    replayed = []
    while True:
        v = parse(await res.next(10, "replayed envelopes, then room.resumed"))
        check(v is not None, f"{res.name}: expected envelopes before room.resumed")
        if v.get("type") == "room.resumed":
            resumed = v.get("payload", {})
            break
        replayed.append(check_envelope(v, room, f"{res.name} replay"))
    ids = [i for i, _ in replayed]
    check(ids == list(range(since + 1, since + 1 + len(ids))),
          f"{res.name}: replay after {since}: ids not contiguous: {ids}")
    got = dict(replayed)
    lost = [(o, t) for o, t in sorted(acked.items()) if o > since and got.get(o) != t]
    check(not lost, f"{res.name}: acked messages after {since} not replayed as acked: {lost[:10]}")
    check(resumed.get("complete") is True and resumed.get("last_id") == since + len(ids),
          f"{res.name}: room.resumed since {since}: expected complete true, last_id {since + len(ids)}; got {resumed}")
    for cl in (pub, sub, res):
        await cl.close()
    stored_anyway = sum(1 for t, _ in errors if t in texts_in_history)
    print(f"d. Redis kill -9 at offset {state['before']}, back after {state['up'] - state['down']:.1f} s: "
          f"{len(acked)} acked ({len(after)} after the kill, {acked_since_up} once it was back), {len(errors)} not_stored "
          f"({stored_anyway} of them in history anyway); every acked message in history on a and c; "
          f"live to b again ({live_ok}); resume on c since {since}: {len(ids)} replayed, complete")
    redis["proc"] = state["redis"]


async def redis_late(cluster):
    port = free_port()
    node = await cluster.start_node("d", "tokio", f"redis://127.0.0.1:{port}")
    room = "late"
    client = await Client.open("late-d", node.url)
    await client.join(room)
    t0 = time.monotonic()
    await client.say(room, "before redis")
    answer = await client.take(lambda m: m.startswith("message rejected:") or m == f"room {room}: before redis",
                               10, "`message rejected: ...` (Redis unreachable)")
    check(answer.startswith("message rejected:") and "redis" in answer.lower(),
          f"{client.name}: with Redis unreachable expected `message rejected: ...` naming Redis; got {answer!r}")
    rejected_after, rejection = time.monotonic() - t0, answer
    other = await Client.open("late-d-2", node.url)
    await other.join(room)

    await cluster.start_redis(port, os.path.join(cluster.dir, f"redis-late-{port}"))
    up = time.monotonic()
    deadline, k, works = up + 15, 0, None
    while works is None and time.monotonic() < deadline:
        text = f"late-{k}"
        k += 1
        await client.say(room, text, id=text)
        answer = await client.answer(text, 10)
        if answer["type"] == "ack":
            acked_offset(client, answer, text)
            await client.line(room, text, 5)
            await other.line(room, text, 5)
            works = text
        else:
            check(answer.get("payload", {}).get("error") == "not_stored", f"{client.name}: {text}: {answer}")
            await asyncio.sleep(1)
    check(works is not None, f"{client.name}: messages on node d still not stored 15 s after redis-server "
          f"started on port {port}; last answer {answer}")
    took = time.monotonic() - up
    for cl in (client, other):
        await cl.close()
    print(f"e. Redis unreachable at start-up: node d served, a message was rejected in {rejected_after:.1f} s "
          f"(`{rejection}`); once redis-server listened, messages worked after {took:.1f} s")


async def main(args):
    cluster = Cluster(args)
    scenario = "start-up"
    try:
        redis_port = free_port()
        redis = {"port": redis_port, "dir": os.path.join(args.dir, "redis-main")}
        redis["proc"] = await cluster.start_redis(redis_port, redis["dir"])
        redis_url = f"redis://127.0.0.1:{redis_port}"
        nodes = [await cluster.start_node(name, runtime, redis_url)
                 for name, runtime in (("a", "tokio"), ("b", "smol"), ("c", "mio"))]
        print(f"redis-server on {redis_port}; nodes: " + ", ".join(f"{n.node} {n.url}" for n in nodes))
        scenarios = [
            ("a (fan-out)", lambda: fan_out(nodes)),
            ("b (one order)", lambda: one_order(nodes)),
            ("c (resume after kill -9)", lambda: resume_after_kill(cluster, nodes, redis_url)),
            ("d (Redis restarted)", lambda: redis_restart(cluster, nodes, redis)),
            ("e (Redis unreachable at start-up)", lambda: redis_late(cluster)),
        ]
        only = set(args.only.split(",")) if args.only else None
        for name, run in scenarios:
            if only and name[0] not in only:
                continue
            scenario = name
            result = await asyncio.wait_for(run(), 120)
            if name.startswith("c "):
                nodes[1] = result
        print("multinode: passed")
        return 0
    except Failed as error:
        print(f"multinode: FAILED: {scenario}: {error}", file=sys.stderr)
        return 1
    except asyncio.TimeoutError:
        print(f"multinode: FAILED: {scenario}: did not finish within 120 s", file=sys.stderr)
        return 1
    finally:
        cluster.stop_all()


def stop(signum, frame):
    raise SystemExit(128 + signum)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chat", required=True, help="the chat binary")
    parser.add_argument("--redis-server", required=True)
    parser.add_argument("--redis-cli", required=True)
    parser.add_argument("--dir", required=True, help="a directory for logs, pids and Redis data")
    parser.add_argument("--only", help="scenario letters to run, e.g. a,b (default: all)")
    signal.signal(signal.SIGTERM, stop)
    sys.exit(asyncio.run(main(parser.parse_args())))
