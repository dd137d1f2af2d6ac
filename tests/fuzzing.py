"""What the schemathesis runs share: the bridge from schemathesis's event loop to the session's.

Schemathesis calls an ASGI app from its own event-loop thread, while the session's app and its
MongoDB client live on the test session's loop; `SessionLoopBridge` carries each request across.
"""

import asyncio

from fastapi import FastAPI
from starlette.types import Message, Receive, Scope, Send


class SessionLoopBridge:
    """An ASGI app that runs each request on `loop`, where the real app was started."""

    def __init__(self, app: FastAPI, loop: asyncio.AbstractEventLoop) -> None:
        self.app = app
        self.loop = loop

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":  # the session fixture owns the real lifespan
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        sent: list[Message] = []
        future = asyncio.run_coroutine_threadsafe(self._serve(dict(scope), body, sent), self.loop)
        try:
            await asyncio.wrap_future(future)
        finally:
            for message in sent:
                await send(message)

    async def _serve(self, scope: Scope, body: bytes, sent: list[Message]) -> None:
        delivered, finished = False, asyncio.Event()

        async def receive() -> Message:
            nonlocal delivered
            if delivered:
                await finished.wait()
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            sent.append(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finished.set()

        await self.app(scope, receive, send)
