"""Server-Sent Events from the bus: each message a subscriber may see, as it arrives, until a limit.

The subscription lives as long as the response: messages are handed from the bus's thread to the
response's event loop through a bounded queue (a reader too slow for the stream loses messages rather
than memory), a comment line keeps idle connections open, and the subscription ends with the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import Request
from fastapi.responses import StreamingResponse

from linli.core.bus import Bus, Message

KEEPALIVE_S = 15.0
QUEUE = 1000
RETRY_MS = 2000  # how soon a browser's EventSource reconnects after the stream has ended

# What to send of a message's data: (event name, id) to send it, None to leave it out.
Pick = Callable[[dict[str, Any]], tuple[str, str] | None]


def stream(
    request: Request, bus: Bus, pattern: str, pick: Pick, *, timeout: float, limit: int
) -> StreamingResponse:
    """A text/event-stream of the messages on pattern that pick lets through (closed after timeout s)."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[tuple[str, str, dict[str, Any]]] = asyncio.Queue(maxsize=QUEUE)

    def offer(item: tuple[str, str, dict[str, Any]]) -> None:
        if not queue.full():
            queue.put_nowait(item)

    def on_message(message: Message) -> None:
        data = message.json()
        picked = pick(data)
        if picked is not None:
            loop.call_soon_threadsafe(offer, (picked[0], picked[1], data))

    subscription = bus.subscribe(pattern, on_message)

    async def frames() -> AsyncIterator[str]:
        try:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            deadline, sent = loop.time() + timeout, 0
            while sent < limit and loop.time() < deadline:
                wait = min(KEEPALIVE_S, deadline - loop.time())
                try:
                    event, ident, data = await asyncio.wait_for(queue.get(), wait)
                except TimeoutError:
                    if await request.is_disconnected():
                        break
                    yield ": keep-alive\n\n"
                    continue
                sent += 1
                text = json.dumps(data, ensure_ascii=False, default=str)
                yield f"id: {ident}\nevent: {event}\ndata: {text}\n\n"
        finally:
            subscription.unsubscribe()

    return StreamingResponse(
        frames(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
