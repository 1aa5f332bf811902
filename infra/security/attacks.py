"""The attacks of issue 16 against a running stack, and the answer each gets.

    ./start-dev.sh &
    target/interop-venv/bin/python infra/security/attacks.py $(pgrep -f target/debug/chat-service)

Needs httpx and websockets (the interop venv has both: infra/interop/run.sh
creates it). Registers a fresh user on the gateway at 127.0.0.1:9050, then
tries, in order: the doubling tree_edit (reading chat-service's resident
memory before and after), dot segments in plain and upgrade requests, an
agent call without credentials naming another user, eight turns at once
over compact sockets and a seventeenth chat socket, the gateway's /metrics
as a user, and a body naming _auth nested past serde_json's limit. Prints
one line per attack; it asserts nothing (the tests do).
"""
import asyncio
import json
import sys
import time

import httpx
import websockets

GW = "http://127.0.0.1:9050"

def rss_kib(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def main():
    chat_pid = int(sys.argv[1])
    async with httpx.AsyncClient(base_url=GW, timeout=30) as http:
        user = f"eve{int(time.time())}"
        await http.post("/api/v1/auth/register", json={"username": user, "password": "correct horse battery"})
        token = (await http.post("/api/v1/auth/login", json={"username": user, "password": "correct horse battery"})).json()["access_token"]
        h = {"authorization": f"Bearer {token}"}
        conv = (await http.post("/api/v1/conversations", json={"agent_id": "tree"}, headers=h)).json()["id"]
        # 1. the doubling tree_edit
        before = rss_kib(chat_pid)
        async with websockets.connect(f"ws://127.0.0.1:9050/ws/chat?token={token}&conversation_id={conv}") as ws:
            await ws.recv(); await ws.recv()
            ops = [{"op": "add", "path": "/a", "value": ["x" * 8000]}] + [{"op": "copy", "from": "/a", "path": "/a/-"}] * 25
            frame = json.dumps({"type": "tree_edit", "data": {"patch": ops, "base_version": 0}})
            await ws.send(frame)
            answer = json.loads(await ws.recv())
        after = rss_kib(chat_pid)
        tree = (await http.get(f"/api/v1/conversations/{conv}", headers=h)).json()
        print(f"1. tree_edit of {len(frame)} bytes, 25 copies: {answer['type']} {answer.get('error')}; "
              f"tree {tree['tree']} version {tree['tree_version']}; chat-service RSS {before} -> {after} KiB (+{after-before})")
        # 2. dot segments through a WebSocket upgrade and plain HTTP
        for path in ["/ws/trace/%2e%2e/%2e%2e/metrics", "/ws/trace/%2E%2e/%2e%2e/v1/models", "/ws/chat/%252e%252e/x", "/api/v1/conversations/..%2f..%2fmetrics", "/api/v1/conversations/%00"]:
            r = await http.get(path, headers={**h, "connection": "upgrade", "upgrade": "websocket", "sec-websocket-version": "13", "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ=="})
            r2 = await http.get(path, headers=h)
            print(f"2. {path}: upgrade {r.status_code} {r.json()['error']['code']}, plain {r2.status_code} {r2.json()['error']['code']}")
        # 4. an agent called without credentials, naming a victim
        body = {"jsonrpc": "2.0", "id": 1, "method": "message/send", "params": {"message": {"kind": "message", "messageId": "m", "role": "user", "parts": [{"kind": "text", "text": "What is 1 + 1?"}], "metadata": {"confab": {"user_id": "usr-victim"}}}}}
        r = await http.post("http://127.0.0.1:8101/", json=body)
        print(f"4. agent without a credential: {r.status_code} {r.json().get('error', {}).get('message')}")
        # 5. turns in flight over many compact sockets
        codes = []
        socks = []
        for i in range(8):
            ws = await websockets.connect(f"ws://127.0.0.1:9050/ws/chat?token={token}&dialect=compact")
            await ws.recv()
            await ws.send(json.dumps({"type": "message", "text": "What is 6 * 7?"}))
            socks.append(ws)
        for ws in socks:
            while True:
                f = json.loads(await ws.recv())
                if f["type"] in ("done", "error"):
                    codes.append(f.get("code", f["type"]))
                    break
            await ws.close()
        print(f"5. 8 compact sockets, a turn each at once: {codes}")
        opened, closed = [], None
        for i in range(17):
            ws = await websockets.connect(f"ws://127.0.0.1:9050/ws/chat?token={token}")
            opened.append(ws)
        try:
            await opened[-1].recv(); await opened[-1].recv(); await opened[-1].recv()
        except websockets.ConnectionClosed as e:
            closed = (e.rcvd.code, e.rcvd.reason)
        print(f"5. 17th chat socket of one user: closed {closed}")
        for ws in opened: await ws.close()
        # 6. /metrics
        r = await http.get("/metrics"); r2 = await http.get("/metrics", headers=h)
        print(f"6. gateway /metrics anonymous {r.status_code}, user {r2.status_code}")
        deep = '{"_auth":1,"a":' + "[" * 200 + "]" * 200 + "}"
        r = await http.post(f"/api/v1/conversations/{conv}/messages", content=deep, headers={**h, "content-type": "application/json"})
        print(f"6. deep body naming _auth: {r.status_code} {r.json()['error']['code']}")

asyncio.run(main())
