"""WebSockets over HTTP/2 (RFC 8441) against hubbub, with Python's `h2`
package: TLS with ALPN h2, extended CONNECT by hand, RFC 6455 frames masked
and parsed by hand.

Usage: h2_websocket.py PORT CA_PEM

The server (runtime-tokio/tests/h2.rs `python_h2_client`) is a hub on
/chat that answers text with "echo: " + text and picks subprotocol "chat".
Checks, on one connection: several WebSockets at once, a message larger
than the flow-control windows, a clean close of one, refused requests
(wrong version, unknown :protocol, no :protocol, wrong path), and a stream
reset in the middle of a message that ends only its own session.
Every wait is bounded (10 s). Exits non-zero on failure.
"""

import os
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.settings

LIMIT = 10.0


class Client:
    def __init__(self, port, ca):
        context = ssl.create_default_context(cafile=ca)
        context.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection(("127.0.0.1", port), timeout=LIMIT)
        self.sock = context.wrap_socket(raw, server_hostname="localhost")
        alpn = self.sock.selected_alpn_protocol()
        assert alpn == "h2", f"ALPN chose {alpn!r}"
        # Outbound validation off: one test sends a CONNECT without :protocol.
        config = h2.config.H2Configuration(
            client_side=True, header_encoding="utf-8", validate_outbound_headers=False
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.conn.initiate_connection()
        self.flush()
        self.streams = {}
        self.pump(lambda: self.conn.remote_settings.enable_connect_protocol == 1)

    def flush(self):
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def pump(self, done, what="condition"):
        """Read and handle events until done() holds, within LIMIT."""
        deadline = time.monotonic() + LIMIT
        while not done():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            data = self.sock.recv(65536)
            if not data:
                raise AssertionError(f"connection closed while waiting for {what}")
            for event in self.conn.receive_data(data):
                self.handle(event)
            self.flush()

    def handle(self, event):
        stream = self.streams.get(getattr(event, "stream_id", None))
        if isinstance(event, h2.events.ResponseReceived):
            stream["headers"] = dict(event.headers)
        elif isinstance(event, h2.events.DataReceived):
            stream["data"] += event.data
            self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            stream["ended"] = True
        elif isinstance(event, h2.events.StreamReset):
            stream["reset"] = event.error_code

    def request(self, path="/chat", protocol="websocket", version="13", extra=()):
        sid = self.conn.get_next_available_stream_id()
        headers = [(":method", "CONNECT")]
        if protocol is not None:
            headers.append((":protocol", protocol))
        headers += [(":scheme", "https"), (":path", path), (":authority", "localhost")]
        if version is not None:
            headers.append(("sec-websocket-version", version))
        headers += list(extra)
        self.streams[sid] = {"headers": None, "data": b"", "ended": False, "reset": None}
        self.conn.send_headers(sid, headers)
        self.flush()
        return sid

    def answer(self, sid):
        """The response's headers, or the stream's reset code."""
        s = self.streams[sid]
        self.pump(lambda: s["headers"] is not None or s["reset"] is not None, "a response")
        return s["headers"] if s["headers"] is not None else ("reset", s["reset"])

    def websocket(self, extra=()):
        sid = self.request(extra=extra)
        headers = self.answer(sid)
        assert headers[":status"] == "200", headers
        for name in ("upgrade", "connection", "sec-websocket-accept"):
            assert name not in headers, headers
        return sid

    def send(self, sid, data):
        """Send within the flow-control windows and the frame size."""
        while data:
            window = self.conn.local_flow_control_window(sid)
            if window == 0:
                before = window
                self.pump(lambda: self.conn.local_flow_control_window(sid) > before, "window")
                continue
            n = min(window, self.conn.max_outbound_frame_size, len(data))
            self.conn.send_data(sid, data[:n])
            self.flush()
            data = data[n:]

    def frame(self, sid):
        """The next whole server frame: (opcode, payload)."""
        s = self.streams[sid]
        parsed = []

        def ready():
            frame = parse(s["data"])
            if frame is not None:
                parsed.append(frame)
            return bool(parsed)

        self.pump(ready, "a frame")
        opcode, payload, used = parsed[0]
        s["data"] = s["data"][used:]
        return opcode, payload

    def echo(self, sid, text):
        self.send(sid, masked(0x1, text.encode()))
        opcode, payload = self.frame(sid)
        assert opcode == 0x1, opcode
        assert payload.decode() == "echo: " + text, payload[:80]


def masked(opcode, payload):
    key = os.urandom(4)
    n = len(payload)
    if n < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
    elif n < 65536:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def parse(data):
    if len(data) < 2:
        return None
    assert data[1] & 0x80 == 0, "a server frame is not masked"
    n, head = data[1] & 0x7F, 2
    if n == 126:
        if len(data) < 4:
            return None
        n, head = struct.unpack("!H", data[2:4])[0], 4
    elif n == 127:
        if len(data) < 10:
            return None
        n, head = struct.unpack("!Q", data[2:10])[0], 10
    if len(data) < head + n:
        return None
    return data[0] & 0x0F, data[head : head + n], head + n


def main():
    port, ca = int(sys.argv[1]), sys.argv[2]
    client = Client(port, ca)

    # Several WebSockets on one connection, interleaved.
    sockets = [client.websocket() for _ in range(3)]
    for round_ in range(3):
        for n, sid in enumerate(sockets):
            client.echo(sid, f"{n}/{round_}")
    # Subprotocol and permessage-deflate negotiated in the 200.
    sid = client.request(
        extra=[
            ("sec-websocket-protocol", "x, chat"),
            ("sec-websocket-extensions", "permessage-deflate"),
        ]
    )
    headers = client.answer(sid)
    assert headers[":status"] == "200", headers
    assert headers["sec-websocket-protocol"] == "chat", headers
    assert headers["sec-websocket-extensions"].startswith("permessage-deflate"), headers
    client.conn.reset_stream(sid)
    client.flush()
    # Larger than the stream window (64 KiB): flow control both ways.
    client.echo(sockets[1], "y" * 150_000)

    # Refused requests, on the same connection.
    for kwargs, status in [
        ({"version": "8"}, "400"),
        ({"version": None}, "400"),
        ({"protocol": "foo"}, "501"),
        ({"path": "/elsewhere"}, "404"),
    ]:
        answer = client.answer(client.request(**kwargs))
        assert answer[":status"] == status, (kwargs, answer)
    # No :protocol but :path and :scheme: malformed for HTTP/2 (a reset)
    # or refused (4xx), never a WebSocket.
    answer = client.answer(client.request(protocol=None))
    assert answer[0] == "reset" or answer[":status"].startswith("4"), answer

    # A reset in the middle of a message ends that session only.
    doomed = client.websocket()
    client.echo(doomed, "before")
    client.send(doomed, masked(0x1, b"half of this message")[:9])
    client.conn.reset_stream(doomed)
    client.flush()
    for n, sid in enumerate(sockets):
        client.echo(sid, f"after the reset {n}")

    # A clean close of one: the close echoed, then END_STREAM.
    first = sockets.pop(0)
    client.send(first, masked(0x8, struct.pack("!H", 1000)))
    opcode, payload = client.frame(first)
    assert opcode == 0x8 and payload[:2] == struct.pack("!H", 1000), (opcode, payload)
    client.pump(lambda: client.streams[first]["ended"], "END_STREAM")
    for sid in sockets:
        client.echo(sid, "still here")

    client.conn.close_connection()
    client.flush()
    client.sock.close()
    print("h2 interop: ok")


if __name__ == "__main__":
    main()
