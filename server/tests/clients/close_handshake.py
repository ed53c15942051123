"""A client that is not ours (Python `websockets`) closes a socket and reports what came back.

Usage: close_handshake.py WS_URL TOKEN|-
With a token it sends `hello` and waits for `ready` first; with `-` it closes before `hello`.
Prints one JSON line: the close frame the server sent (`null` when none arrived) and whether the
closing handshake completed. Written from docs/protocol.md, not from the server's code.
"""

import asyncio
import json
import sys

import websockets


async def main(url: str, token: str) -> None:
    async with websockets.connect(url, close_timeout=3, ping_interval=None) as ws:
        if token != "-":
            await ws.send(json.dumps({"type": "hello", "token": token}))
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if frame["type"] == "ready":
                    break
        await ws.close(1000, "done")
        rcvd = ws.protocol.close_rcvd
        print(
            json.dumps(
                {
                    "close_rcvd": None
                    if rcvd is None
                    else {"code": rcvd.code, "reason": rcvd.reason},
                    "handshake_completed": ws.protocol.close_rcvd_then_sent is not None,
                }
            )
        )


asyncio.run(main(sys.argv[1], sys.argv[2]))
