"""One blocking connection to a node for tests: send a call, wait for its reply."""

from __future__ import annotations

import socket
from typing import Any

from nodes import wire


class Line:
    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.reader = wire.FrameReader()
        self.rid = 0

    def call(self, msg: wire.Msg) -> Any:
        self.rid += 1
        self.sock.sendall(wire.encode_frame([(wire.CALL, self.rid, msg)]))
        while True:
            data = self.sock.recv(65536)
            assert data, "the node closed a connection that sent a well-formed request"
            for frame in self.reader.feed(data):
                for kind, rid, reply in frame:
                    assert (kind, rid) == (wire.REPLY, self.rid)
                    return reply

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Line:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def call_once(port: int, msg: wire.Msg) -> Any:
    with Line(port) as line:
        return line.call(msg)
