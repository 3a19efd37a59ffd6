"""A door controller's query API for the pull-source tests: records since startTime, paged, newest last."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from linli.core.timeutil import to_local

STAMP = "%Y-%m-%d %H:%M:%S"


@dataclass
class Vendor:
    """A door controller's query API: records since startTime, paged, newest last."""

    records: list[dict[str, Any]] = field(default_factory=list)
    mode: str = "ok"  # ok | error | slow | garbage
    requests: list[dict[str, str]] = field(default_factory=list)
    tokens: list[str] = field(default_factory=list)

    def add(self, uid: int, at: datetime, result: int = 1) -> None:
        """A swipe at `at` (UTC), as the controller keeps it: local time without an offset."""
        when = to_local(at).strftime(STAMP)
        self.records.append(
            {"id": uid, "time": when, "cardNo": f"00{uid:08d}", "door": "2号楼单元门", "result": result}
        )

    def answer(self, query: dict[str, str]) -> tuple[int, bytes]:
        self.requests.append(query)
        if self.mode == "error":
            return 500, b'{"code": 500, "msg": "internal error"}'
        if self.mode == "slow":
            time.sleep(1.0)
        if self.mode == "garbage":
            return 200, b"<html>login expired</html>"
        since = datetime.strptime(query.get("startTime", "2000-01-01 00:00:00"), STAMP)
        found = [r for r in self.records if datetime.strptime(r["time"], STAMP) >= since]
        page, size = int(query["pageNo"]), int(query["pageSize"])
        chunk = found[(page - 1) * size : page * size]
        body = {"code": 0, "data": {"total": len(found), "list": chunk}}
        return 200, json.dumps(body, ensure_ascii=False).encode()


def serve(state: Vendor) -> Iterator[tuple[Vendor, str]]:
    """Serve state on 127.0.0.1 in a thread; yields it and its URL until closed."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlparse(self.path)
            state.tokens.append(self.headers.get("Authorization", ""))
            status, body = state.answer({k: v[0] for k, v in parse_qs(url.query).items()})
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state, f"http://127.0.0.1:{server.server_address[1]}/api/v2/access/records"
    server.shutdown()
    server.server_close()
