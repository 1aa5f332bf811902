"""Deletes the JetStream streams of one bus namespace (what a benchmark run
made under its own `CONFAB__BUS__NAMESPACE`), speaking the NATS client
protocol over a plain socket: no NATS client library or CLI is needed.

    python3 infra/bench/nats_clean.py nats://127.0.0.1:4222 bench123
"""

import json
import socket
import sys
import urllib.parse


class Nats:
    def __init__(self, url):
        parsed = urllib.parse.urlparse(url)
        self.sock = socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 4222), timeout=10)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # INFO
        connect = {"verbose": False, "pedantic": False, "name": "confab-bench-clean"}
        if parsed.username:
            connect.update(user=urllib.parse.unquote(parsed.username), **{"pass": urllib.parse.unquote(parsed.password or "")})
        self.send(f"CONNECT {json.dumps(connect)}\r\nSUB _clean.reply 1\r\n")
        self.asked = 0

    def send(self, text):
        self.sock.sendall(text.encode())

    def request(self, subject, payload):
        body = json.dumps(payload).encode()
        self.asked += 1
        self.send(f"PUB {subject} _clean.reply {len(body)}\r\n")
        self.sock.sendall(body + b"\r\n")
        while True:
            line = self.file.readline()
            if not line:
                raise ConnectionError("NATS closed the connection")
            if line.startswith(b"PING"):
                self.send("PONG\r\n")
            elif line.startswith(b"-ERR"):
                raise ConnectionError(line.decode().strip())
            elif line.startswith(b"MSG"):
                size = int(line.split()[-1])
                data = self.file.read(size + 2)[:size]
                return json.loads(data)


def main():
    url, namespace = sys.argv[1], sys.argv[2]
    nats = Nats(url)
    prefix = f"{namespace}_"
    names, offset = [], 0
    while True:
        page = nats.request("$JS.API.STREAM.NAMES", {"offset": offset})
        streams = page.get("streams") or []
        names += streams
        offset += len(streams)
        if not streams or offset >= page.get("total", 0):
            break
    mine = [name for name in names if name.startswith(prefix)]
    for name in mine:
        nats.request(f"$JS.API.STREAM.DELETE.{name}", {})
    print(f"deleted {len(mine)} streams of bus namespace {namespace}")


if __name__ == "__main__":
    main()
