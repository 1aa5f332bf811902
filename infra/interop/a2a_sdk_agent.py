"""An A2A agent built with the official Python SDK (a2a-sdk 1.3.0), for Confab's
interoperability suites: Confab's A2A client (chat-service) talks to it.

    python a2a_sdk_agent.py --port 0 --protocol 1.0
    python a2a_sdk_agent.py --port 8123 --protocol 0.3

It answers every message by echoing it: the reply "You said: <text>" is
streamed as one artifact in 3 chunks (append / lastChunk set), --chunk-delay
seconds apart, then the task completes. A cancel stops it (state canceled).

A hostile agent on request: to the message TREE_BOMB it returns, before the
echo, a DataPart {"tree_patch": [...]} that adds an 8,000-character string
and copies it into itself 25 times (asking for 8,000 x 2^25 bytes), so the
suites can show chat-service refuses it within its tree limits.

--protocol 1.0  the card advertises one JSON-RPC interface, protocolVersion
                "1.0"; only the v1.0 methods (SendMessage,
                SendStreamingMessage, GetTask, CancelTask, SubscribeToTask, ...)
                are served, and the SDK checks the A2A-Version header (a request
                without it counts as 0.3 and gets error -32009).
--protocol 0.3  the card advertises one JSON-RPC interface, protocolVersion
                "0.3.0" (the SDK adds the legacy top-level url /
                preferredTransport / protocolVersion fields to the served card);
                only the v0.3 methods (message/send, message/stream, tasks/get,
                tasks/cancel, tasks/resubscribe, ...) are served through the
                SDK's v0.3 compatibility layer. A v1.0 method name gets -32601
                Method not found, as from a v0.3-only server (the SDK by itself
                would keep serving v1.0 on the same endpoint).

Routes: GET /.well-known/agent-card.json and /.well-known/agent.json (the card),
POST / (JSON-RPC), GET /ready (200 "ok"). When it listens it prints one line
to stdout:

    a2a-sdk agent ready: http://127.0.0.1:PORT protocol=1.0

(--port 0 lets the kernel pick the port; the line tells which.)
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import socket
import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from a2a.server.agent_execution import AgentExecutor, RequestContext
from a2a.server.events import EventQueue
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.server.routes import create_agent_card_routes
from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher
from a2a.server.tasks import InMemoryTaskStore, TaskUpdater
from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    Part,
    TaskState,
)
from a2a.helpers import new_data_part, new_task

CHUNKS = 3
TREE_BOMB = "send the tree patch that doubles the tree"


def split_in(text: str, n: int) -> list[str]:
    """`text` cut into `n` pieces (some may be empty for a very short text)."""
    size = -(-len(text) // n)
    return [text[i * size : (i + 1) * size] for i in range(n)]


class EchoExecutor(AgentExecutor):
    def __init__(self, chunk_delay: float) -> None:
        self.chunk_delay = chunk_delay

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        task_id = context.task_id
        context_id = context.context_id
        assert task_id and context_id  # the request handler fills both in
        if context.current_task is None:
            # The first event of a task must be the Task itself.
            await event_queue.enqueue_event(
                new_task(
                    task_id,
                    context_id,
                    TaskState.TASK_STATE_SUBMITTED,
                    history=[context.message] if context.message else None,
                )
            )
        updater = TaskUpdater(event_queue, task_id, context_id)
        await updater.start_work()
        if context.get_user_input() == TREE_BOMB:
            bomb = [{"op": "add", "path": "/a", "value": ["x" * 8000]}]
            bomb += [{"op": "copy", "from": "/a", "path": "/a/-"}] * 25
            await updater.add_artifact(
                [new_data_part({"tree_patch": bomb})],
                artifact_id=f"bomb-{task_id}",
                name="tree_patch",
            )
        reply = f"You said: {context.get_user_input()}"
        artifact_id = f"echo-{task_id}"
        for i, chunk in enumerate(split_in(reply, CHUNKS)):
            await asyncio.sleep(self.chunk_delay)
            await updater.add_artifact(
                [Part(text=chunk)],
                artifact_id=artifact_id,
                name="reply",
                append=i > 0,
                last_chunk=i == CHUNKS - 1,
            )
        await updater.complete()

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        # The framework cancels the running execute() right after this returns.
        updater = TaskUpdater(event_queue, context.task_id or "", context.context_id or "")
        await updater.cancel()


def agent_card(base_url: str, protocol: str) -> AgentCard:
    return AgentCard(
        name="a2a-sdk-echo",
        description="Echoes the message back in three chunks (a2a-sdk interop agent).",
        version="1.0.0",
        supported_interfaces=[
            AgentInterface(
                url=f"{base_url}/",
                protocol_binding="JSONRPC",
                protocol_version="1.0" if protocol == "1.0" else "0.3.0",
            )
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=[
            AgentSkill(
                id="echo",
                name="Echo",
                description='Replies "You said: <text>".',
                tags=["echo", "test"],
                examples=["hello"],
            )
        ],
    )


def build_app(base_url: str, protocol: str, chunk_delay: float) -> Starlette:
    card = agent_card(base_url, protocol)
    handler = DefaultRequestHandler(
        agent_executor=EchoExecutor(chunk_delay),
        task_store=InMemoryTaskStore(),
        agent_card=card,
    )
    dispatcher = JsonRpcDispatcher(
        request_handler=handler, enable_v0_3_compat=(protocol == "0.3")
    )

    async def jsonrpc(request: Request) -> Response:
        if protocol == "0.3":
            # v0.3 only: refuse the v1.0 method names the dispatcher would
            # still serve. request.json() is cached, so the dispatcher can
            # read the body again.
            try:
                body = await request.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("method") in JsonRpcDispatcher.METHOD_TO_MODEL:
                return JSONResponse(
                    {
                        "jsonrpc": "2.0",
                        "id": body.get("id"),
                        "error": {"code": -32601, "message": "Method not found"},
                    }
                )
        return await dispatcher.handle_requests(request)

    async def ready(_: Request) -> Response:
        return PlainTextResponse("ok")

    routes = [
        *create_agent_card_routes(card),
        *create_agent_card_routes(card, card_url="/.well-known/agent.json"),
        Route("/", jsonrpc, methods=["POST"]),
        Route("/ready", ready, methods=["GET"]),
    ]
    return Starlette(routes=routes)


class Server(uvicorn.Server):
    """Prints the ready line once the socket accepts connections."""

    def __init__(self, config: uvicorn.Config, ready_line: str) -> None:
        super().__init__(config)
        self.ready_line = ready_line

    async def startup(self, sockets=None) -> None:  # type: ignore[no-untyped-def]
        await super().startup(sockets=sockets)
        if self.started:
            print(self.ready_line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: the kernel picks one")
    parser.add_argument("--protocol", choices=["1.0", "0.3"], default="1.0")
    parser.add_argument(
        "--chunk-delay", type=float, default=0.3, help="seconds before each of the 3 chunks"
    )
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()

    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    port = sock.getsockname()[1]
    base_url = f"http://{args.host}:{port}"

    app = build_app(base_url, args.protocol, args.chunk_delay)
    config = uvicorn.Config(app, log_level=args.log_level, lifespan="off")
    server = Server(config, f"a2a-sdk agent ready: {base_url} protocol={args.protocol}")
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    sys.exit(main())
