"""A local stand-in for a Gremlin server (such as Azure Cosmos DB's Gremlin API) on a WebSocket: it reads
gremlinpython's request frames (one byte giving the mime type's length, ``application/vnd.gremlin-v2.0+json``, the
JSON request), asks for SASL PLAIN authentication with status 407 when it has a password, and evaluates only
``g.inject(1)``, answering in GraphSON 2.0. It records the requests it received and can answer wrongly, fail, or
stay silent."""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import threading
from typing import Literal

from aiohttp import WSMsgType, web

MIME = b"application/vnd.gremlin-v2.0+json"


class GremlinStandIn:
    """``mode``: ``ok`` answers ``[1]``, ``wrong`` answers ``[2]``, ``error`` answers status 597 (a script error),
    ``silent`` never answers a request."""

    def __init__(self, mode: Literal["ok", "wrong", "error", "silent"] = "ok", user: str = "", password: str = ""):
        self.mode, self.user, self.password = mode, user, password
        self.requests: list[dict] = []
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        app = web.Application()
        app.router.add_get("/gremlin", self._serve)
        self._runner = web.AppRunner(app, shutdown_timeout=0.1)
        self._socket = socket.create_server(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]

    def url(self, credentials: str = "") -> str:
        return f"ws://{credentials}127.0.0.1:{self.port}/gremlin"

    def __enter__(self) -> GremlinStandIn:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *_exc) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        await self._runner.setup()
        await web.SockSite(self._runner, self._socket).start()

    async def _serve(self, http_request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(http_request)
        authenticated, waiting = not self.password, None
        async for frame in ws:
            if frame.type != WSMsgType.BINARY:
                continue
            request = _request(frame.data)
            self.requests.append(request)
            if self.mode == "silent":
                continue
            if request["op"] == "authentication":
                authenticated = _sasl_plain(request) == (self.user, self.password)
                if not authenticated:
                    await _send(ws, request, 401, "Username and/or password are incorrect")
                    continue
                request = waiting
            elif not authenticated:
                waiting = request
                await _send(ws, request, 407, "")
                continue
            await self._evaluate(ws, request)
        return ws

    async def _evaluate(self, ws: web.WebSocketResponse, request: dict) -> None:
        if request["args"].get("gremlin") != "g.inject(1)":
            await _send(ws, request, 597, "the stand-in evaluates only g.inject(1)")
        elif self.mode == "error":
            await _send(ws, request, 597, "ScriptEvaluationError: the graph is not available")
        else:
            await _send(ws, request, 200, "", [{"@type": "g:Int32", "@value": 2 if self.mode == "wrong" else 1}])


def _request(frame: bytes) -> dict:
    mime = frame[1 : 1 + frame[0]]
    if mime != MIME:
        raise ValueError(f"the stand-in speaks only {MIME.decode()}, not {mime.decode()}")
    request = json.loads(frame[1 + frame[0] :])
    return {**request, "requestId": request["requestId"]["@value"]}


def _sasl_plain(request: dict) -> tuple[str, str]:
    _, user, password = base64.b64decode(request["args"]["sasl"]).decode().split("\0")
    return user, password


async def _send(ws: web.WebSocketResponse, request: dict, code: int, message: str, data: list | None = None) -> None:
    await ws.send_bytes(
        json.dumps(
            {
                "requestId": request["requestId"],
                "status": {"code": code, "message": message, "attributes": {}},
                "result": {"data": data, "meta": {}},
            }
        ).encode()
    )
