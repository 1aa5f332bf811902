"""One turn through the gateway, as the browser makes it, for the trace test.

Registers and logs in a user, creates a conversation with the math agent and
streams one turn (`POST /api/v1/conversations/{id}/messages/stream`), sending
a W3C `traceparent` of its own as a browser instrumented with OpenTelemetry
would. Writes what the test needs to `--out` as `turn.json`: the trace id and
the browser's span id, the conversation id and the turn's SSE events.

    python turn.py --gateway URL --out FILE
"""

from __future__ import annotations

import argparse
import json
import secrets
import urllib.request
import uuid
from pathlib import Path

QUESTION = "What is 6 * 7?"
TIMEOUT = 30


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--gateway", required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    # Never through an HTTP proxy: the gateway is on 127.0.0.1.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(method: str, path: str, body: object, headers: dict[str, str]) -> bytes:
        request = urllib.request.Request(
            args.gateway + path,
            data=json.dumps(body).encode(),
            method=method,
            headers={"content-type": "application/json", **headers},
        )
        with opener.open(request, timeout=TIMEOUT) as response:
            return response.read()

    credentials = {"username": f"trace-{uuid.uuid4().hex[:12]}", "password": "correct horse battery"}
    call("POST", "/api/v1/auth/register", credentials, {})
    token = json.loads(call("POST", "/api/v1/auth/login", credentials, {}))["access_token"]
    bearer = {"authorization": f"Bearer {token}"}
    conversation = json.loads(
        call("POST", "/api/v1/conversations", {"title": "trace", "agent_id": "math"}, bearer)
    )["id"]

    trace_id = secrets.token_hex(16)
    browser_span_id = secrets.token_hex(8)
    stream = call(
        "POST",
        f"/api/v1/conversations/{conversation}/messages/stream",
        {"message": QUESTION},
        {**bearer, "accept": "text/event-stream", "traceparent": f"00-{trace_id}-{browser_span_id}-01"},
    )
    # Each SSE event's data is a JSON object named by its "type".
    events = [
        json.loads(line.removeprefix("data:"))["type"]
        for line in stream.decode().splitlines()
        if line.startswith("data:")
    ]
    args.out.write_text(
        json.dumps(
            {
                "trace_id": trace_id,
                "browser_span_id": browser_span_id,
                "conversation_id": conversation,
                "events": events,
                "body": stream.decode(),
            },
            indent=2,
        )
    )
    print(f"turn in conversation {conversation}: trace {trace_id}, events {events}")


if __name__ == "__main__":
    main()
