"""Python `websockets` client against hubbub's `chat` started with

    PRESENCE_EVENTS=true NODE_ID=py-node

usage: chat_engine.py ws://127.0.0.1:PORT/

An independent client's view of acknowledged messages and presence: a
`chat.message` with an `id` is delivered, then acked with its offset; the
same id again is acked with the same offset and not delivered twice; an
over-long id is refused naming it; `room.presence` lists the room's
sessions sorted by id; `presence.join`/`presence.leave` reach the other
members. Exits non-zero on the first mismatch.
"""
import asyncio
import json
import sys

from websockets.asyncio.client import connect

URL = sys.argv[1]
ROOM = "py"


def check(cond, what):
    if not cond:
        sys.exit(f"chat_engine: FAILED: {what}")


async def recv(ws):
    return await asyncio.wait_for(ws.recv(), 10)


async def recv_json(ws):
    text = await recv(ws)
    try:
        return json.loads(text)
    except ValueError:
        sys.exit(f"chat_engine: FAILED: not JSON: {text!r}")


async def client():
    ws = await connect(URL, open_timeout=10)
    check(await recv(ws) == "welcome to hubbub chat", "welcome")
    await ws.send(json.dumps({"type": "room.join", "payload": {"room": ROOM}}))
    check(await recv(ws) == f"joined room: {ROOM}", "joined")
    return ws


async def presence(ws):
    await ws.send(json.dumps({"type": "room.presence", "payload": {"room": ROOM}}))
    reply = await recv_json(ws)
    check(reply["type"] == "room.presence" and reply["payload"]["room"] == ROOM, f"presence: {reply}")
    return reply["payload"]["members"]


def say(text, id):
    return json.dumps({"type": "chat.message", "id": id, "payload": {"room": ROOM, "text": text}})


async def main():
    a = await client()
    members = await presence(a)
    check(len(members) == 1 and members[0]["user"] is None, f"one anonymous member: {members}")
    check(members[0]["node"] == "py-node", f"node: {members}")
    a_id = members[0]["id"]

    b = await client()
    joined = await recv_json(a)
    check(joined["type"] == "presence.join", f"presence.join: {joined}")
    b_id = joined["payload"]["id"]
    check(joined["payload"] == {"room": ROOM, "id": b_id, "user": None, "node": "py-node"}, f"{joined}")
    ids = [m["id"] for m in await presence(b)]
    check(ids == sorted([a_id, b_id]), f"sorted, complete: {ids}")
    print(f"presence: {ids}")

    await a.send(say("hello", "py-1"))
    check(await recv(a) == f"room {ROOM}: hello", "delivered to the sender")
    ack = await recv_json(a)
    check(ack["type"] == "ack" and ack["id"] == "py-1", f"ack: {ack}")
    offset = ack["payload"]["offset"]
    check(isinstance(offset, int) and ack["payload"]["room"] == ROOM, f"ack: {ack}")
    check(await recv(b) == f"room {ROOM}: hello", "delivered to b")
    await a.send(say("hello", "py-1"))
    check(await recv_json(a) == ack, "the retry is acked with the same offset")
    await b.send("ping")
    check(await recv(b) == "pong", "b got the retry: delivered twice")
    print(f"ack: offset {offset}, retry acked the same and delivered once")

    await a.send(say("bad", "x" * 65))
    error = await recv_json(a)
    check(error["type"] == "error" and error["payload"]["error"] == "invalid_id", f"{error}")
    check(error["payload"]["message"].startswith("id: "), f"names the id: {error}")

    await b.close()
    left = await recv_json(a)
    check(left["type"] == "presence.leave" and left["payload"]["id"] == b_id, f"presence.leave: {left}")
    await a.close()
    print("chat_engine: passed")


asyncio.run(main())
