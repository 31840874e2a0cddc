"""A local stand-in for a MongoDB server, speaking enough of its wire protocol for pymongo's handshake (legacy
OP_QUERY ``isMaster`` answered with OP_REPLY, or OP_MSG ``hello``), PLAIN authentication and ``ping``. It records the
commands it received and can answer ``ping`` with ok: 0, or accept connections and never answer."""

from __future__ import annotations

import datetime
import socketserver
import struct
import threading
from typing import Literal

import bson

OP_REPLY, OP_QUERY, OP_MSG = 1, 2004, 2013
HELLO = {
    "ismaster": True,
    "isWritablePrimary": True,
    "helloOk": True,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "logicalSessionTimeoutMinutes": 30,
    "minWireVersion": 0,
    "maxWireVersion": 17,
    "readOnly": False,
    "ok": 1.0,
}


class MongoStandIn:
    """``mode``: ``ok`` answers ping ok: 1, ``not_ok`` answers ok: 0 with an errmsg, ``silent`` never answers.
    With ``user``/``password`` set, commands other than the handshake need PLAIN authentication first."""

    def __init__(self, mode: Literal["ok", "not_ok", "silent"] = "ok", user: str = "", password: str = "") -> None:
        self.mode, self.user, self.password = mode, user, password
        self.commands: list[dict] = []
        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]

    def url(self, credentials: str = "", options: str = "") -> str:
        return f"mongodb://{credentials}127.0.0.1:{self.port}/{options}"

    def __enter__(self) -> MongoStandIn:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self):
        stand_in = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                authenticated = not stand_in.password
                while header := _read(self.request, 16):
                    length, request_id, _, opcode = struct.unpack("<iiii", header)
                    body = _read(self.request, length - 16)
                    if body is None:
                        return
                    command = _command(opcode, body)
                    stand_in.commands.append(command)
                    if stand_in.mode == "silent":
                        continue
                    answer, authenticated = stand_in.answer(command, authenticated)
                    self.request.sendall(_reply(opcode, request_id, answer))

        return Handler

    def answer(self, command: dict, authenticated: bool) -> tuple[dict, bool]:
        name = next(iter(command))
        if name.lower() in ("ismaster", "hello"):
            return {**HELLO, "localTime": datetime.datetime.now(datetime.UTC)}, authenticated
        if name == "saslStart":
            expected = f"\0{self.user}\0{self.password}".encode()
            if command.get("mechanism") == "PLAIN" and bytes(command["payload"]) == expected:
                return {"conversationId": 1, "done": True, "payload": b"", "ok": 1.0}, True
            return _error("Authentication failed.", 18, "AuthenticationFailed"), False
        if not authenticated:
            return _error(f"command {name} requires authentication", 13, "Unauthorized"), False
        if name == "ping" and self.mode == "not_ok":
            return _error("node is recovering", 91, "ShutdownInProgress"), True
        return {"ok": 1.0}, True


def _error(message: str, code: int, code_name: str) -> dict:
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": code_name}


def _read(sock, size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _command(opcode: int, body: bytes) -> dict:
    """The command document of an OP_QUERY on ``<db>.$cmd`` or of an OP_MSG's body section."""
    if opcode == OP_QUERY:
        collection_end = body.index(b"\0", 4)
        query = body[collection_end + 9 :]
        return bson.decode(query[: struct.unpack("<i", query[:4])[0]])
    if opcode == OP_MSG and body[4] == 0:
        return bson.decode(body[5 : 5 + struct.unpack("<i", body[5:9])[0]])
    raise ValueError(f"opcode {opcode} is not one the stand-in speaks")


def _reply(opcode: int, request_id: int, answer: dict) -> bytes:
    document = bson.encode(answer)
    if opcode == OP_QUERY:
        opcode, body = OP_REPLY, struct.pack("<iqii", 0, 0, 0, 1) + document
    else:
        body = struct.pack("<I", 0) + b"\0" + document
    return struct.pack("<iiii", 16 + len(body), request_id + 1, request_id, opcode) + body
