"""A stand-in for Grafana's HTTP API, for testing ``commons dashboards publish`` where no real
Grafana can run (it is not installable on this machine).

A real HTTP server on a loopback port that implements only the documented endpoints the
publisher uses, with Grafana's status codes and response shapes
(grafana.com/docs/grafana/latest/developers/http_api/): ``GET /api/health``, ``GET
/api/folders/:uid``, ``POST /api/folders``, ``GET /api/search``, ``GET
/api/dashboards/uid/:uid``, ``POST /api/dashboards/db``, ``GET|POST
/api/dashboards/uid/:uid/public-dashboards`` and ``PATCH
/api/dashboards/uid/:uid/public-dashboards/:pubUid``. Tokens have a role: a Viewer may read,
not write (403), an unknown token is refused (401). It counts the writes it accepted.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

WRITERS = ("Editor", "Admin")
PUBLIC_PATH = r"/api/dashboards/uid/([^/]+)/public-dashboards(?:/([^/]+))?"


@dataclass
class GrafanaState:
    tokens: dict[str, str]  # token -> role
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)  # uid -> stored
    public: dict[str, dict[str, Any]] = field(default_factory=dict)  # dashboard uid -> config
    writes: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_id: int = 1


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    state: GrafanaState

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PATCH(self) -> None:
        self._serve("PATCH")

    def _serve(self, method: str) -> None:
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        try:
            if url.path == "/api/health":
                status, answer = 200, {"commit": "double", "database": "ok", "version": "10.4.0"}
            else:
                role = self._role()
                if method != "GET" and role not in WRITERS:
                    raise _Refused(
                        403,
                        "You'll need additional permissions to perform this action. "
                        "Permissions needed: dashboards:write",
                    )
                with self.state.lock:
                    status, answer = self._route(method, url.path, parse_qs(url.query), body)
                    if method != "GET":
                        self.state.writes.append(f"{method} {url.path}")
        except _Refused as exc:
            status, answer = exc.status, {"message": exc.message}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _role(self) -> str:
        header = self.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ")
        role = self.state.tokens.get(token) if header.startswith("Bearer ") else None
        if role is None:
            raise _Refused(401, "Invalid API key")
        return role

    def _route(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        s = self.state
        if match := re.fullmatch(r"/api/folders/([^/]+)", path):
            folder = s.folders.get(match.group(1))
            if method == "GET" and folder is not None:
                return 200, folder
            raise _Refused(404, "folder not found")
        if path == "/api/folders" and method == "POST":
            uid = body.get("uid") or uuid.uuid4().hex[:10]
            if uid in s.folders:
                raise _Refused(409, "a folder with the same uid already exists")
            s.folders[uid] = {"uid": uid, "title": body["title"], "id": len(s.folders) + 1}
            return 200, s.folders[uid]
        if path == "/api/search" and method == "GET":
            tags = set(query.get("tag", []))
            hits = [
                {
                    "uid": uid,
                    "title": d["dashboard"].get("title"),
                    "type": "dash-db",
                    "tags": d["dashboard"].get("tags", []),
                    "folderUid": d["folderUid"],
                }
                for uid, d in sorted(s.dashboards.items())
                if tags <= set(d["dashboard"].get("tags", []))
            ]
            return 200, hits
        if path == "/api/dashboards/db" and method == "POST":
            return 200, self._save(body)
        if match := re.fullmatch(r"/api/dashboards/uid/([^/]+)", path):
            stored = s.dashboards.get(match.group(1))
            if method == "GET" and stored is not None:
                meta = {"folderUid": stored["folderUid"], "version": stored["version"]}
                return 200, {"dashboard": stored["dashboard"], "meta": meta}
            raise _Refused(404, "Dashboard not found")
        if match := re.fullmatch(
            r"/api/dashboards/uid/([^/]+)/public-dashboards(?:/([^/]+))?", path
        ):
            return self._public(method, match.group(1), match.group(2), body)
        raise _Refused(404, "Not found")

    def _save(self, body: dict[str, Any]) -> dict[str, Any]:
        s = self.state
        dashboard = dict(body["dashboard"])
        uid = dashboard["uid"]
        folder = body.get("folderUid")
        if folder is not None and folder not in s.folders:
            raise _Refused(400, "folder not found")
        previous = s.dashboards.get(uid)
        if previous is not None and not body.get("overwrite"):
            raise _Refused(412, "A dashboard with the same uid already exists")
        version = previous["version"] + 1 if previous else 1
        dashboard_id = previous["dashboard"]["id"] if previous else s.next_id
        s.next_id += previous is None
        dashboard.update(id=dashboard_id, version=version)
        s.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder, "version": version}
        return {
            "id": dashboard_id,
            "uid": uid,
            "url": f"/d/{uid}",
            "status": "success",
            "version": version,
        }

    def _public(
        self, method: str, dashboard_uid: str, public_uid: str | None, body: Any
    ) -> tuple[int, Any]:
        s = self.state
        if dashboard_uid not in s.dashboards:
            raise _Refused(404, "Dashboard not found")
        current = s.public.get(dashboard_uid)
        if method == "GET" and public_uid is None:
            if current is None:
                raise _Refused(404, "Public dashboard not found")
            return 200, current
        if method == "POST" and public_uid is None:
            if current is not None:
                raise _Refused(400, "Public dashboard already exists")
            config = {
                "isEnabled": False,
                "annotationsEnabled": False,
                "timeSelectionEnabled": False,
                "share": "public",
                **body,
                "dashboardUid": dashboard_uid,
            }
            # Optional: generated when null or empty.
            config["uid"] = config.get("uid") or uuid.uuid4().hex[:12]
            config["accessToken"] = config.get("accessToken") or uuid.uuid4().hex
            s.public[dashboard_uid] = config
            return 200, config
        if method == "PATCH" and current is not None and current["uid"] == public_uid:
            current.update(body)
            return 200, current
        raise _Refused(404, "Public dashboard not found")


@contextmanager
def grafana_double(tokens: dict[str, str]) -> Iterator[tuple[str, GrafanaState]]:
    """``(url, state)`` of a running double, shut down at the end of the block."""
    state = GrafanaState(tokens)
    handler = type("Handler", (_Handler,), {"state": state})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="grafana-double", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host!s}:{port}", state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
