"""A small client for InfluxDB's v1 HTTP API: ``/write`` (line protocol) and ``/query`` (InfluxQL).

The v1 endpoints are served natively by InfluxDB 1.x and as a compatibility API by 2.x and 3.x,
so this is the default path. A write ends in one of three outcomes, as Telegraf's outputs do:
*accepted* (2xx), *retry* (the server or the network failed: try again later), or *rejected*
(the server says the data itself is bad: retrying the same bytes can never succeed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from enum import Enum
from typing import Any

import requests

WRITE_TIMEOUT_S = 30.0
QUERY_TIMEOUT_S = 300.0
QUERY_CHUNK_SIZE = 10_000


class Outcome(Enum):
    ACCEPTED = "accepted"
    RETRY = "retry"
    REJECTED = "rejected"


@dataclass(frozen=True)
class WriteResult:
    outcome: Outcome
    status: int | None  # HTTP status, None when no answer came
    reason: str


class InfluxQueryError(Exception):
    """InfluxDB refused or failed a query; carries the query and the server's message."""

    def __init__(self, query: str, message: str) -> None:
        super().__init__(f"{message} (query: {query})")
        self.query = query
        self.message = message


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def _is_data_error(status: int) -> bool:
    # 400: unparseable line protocol, field type conflict, points beyond the retention policy;
    # 413: the body is over the server's limit; 422 (2.x): unprocessable points.
    return status in (400, 413, 422)


class InfluxHTTP:
    """InfluxDB v1 HTTP API for one database."""

    def __init__(
        self,
        url: str,
        database: str,
        credentials: Credentials | None = None,
        retention_policy: str | None = None,
        session: requests.Session | None = None,
        write_timeout: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.write_timeout = write_timeout
        self.database = database
        self.retention_policy = retention_policy
        self._session = session or requests.Session()
        if credentials is not None:
            self._session.auth = (credentials.username, credentials.password)

    def close(self) -> None:
        self._session.close()

    def ping(self) -> bool:
        try:
            return self._session.get(f"{self.url}/ping", timeout=2.0).status_code == 204
        except requests.RequestException:
            return False

    def write(self, lines: list[str], timeout: float | None = None) -> WriteResult:
        """POST line protocol (seconds precision) and classify the answer."""
        params = {"db": self.database, "precision": "s"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        body = "\n".join(lines).encode("utf-8")
        try:
            response = self._session.post(
                f"{self.url}/write",
                params=params,
                data=body,
                timeout=timeout if timeout is not None else self.write_timeout,
            )
        except requests.Timeout as exc:
            return WriteResult(Outcome.RETRY, None, f"timeout: {exc}")
        except requests.ConnectionError as exc:
            return WriteResult(Outcome.RETRY, None, f"connection failed: {exc}")
        status = response.status_code
        if 200 <= status < 300:
            return WriteResult(Outcome.ACCEPTED, status, "")
        reason = _error_text(response)
        if _is_data_error(status):
            return WriteResult(Outcome.REJECTED, status, reason)
        # 401/403 (credentials), 404 (database missing), 429, 5xx: fixable without changing
        # the data, so it is kept and retried.
        return WriteResult(Outcome.RETRY, status, reason)

    def query(self, q: str, *, post: bool = False, epoch: str = "s") -> list[dict[str, Any]]:
        """Run InfluxQL and return the statements' results (not chunked: for small answers)."""
        params = {"db": self.database, "q": q, "epoch": epoch}
        try:
            if post:
                response = self._session.post(
                    f"{self.url}/query", data=params, timeout=QUERY_TIMEOUT_S
                )
            else:
                response = self._session.get(
                    f"{self.url}/query", params=params, timeout=QUERY_TIMEOUT_S
                )
        except requests.RequestException as exc:
            raise InfluxQueryError(q, f"InfluxDB did not answer: {exc}") from exc
        if response.status_code >= 300:
            raise InfluxQueryError(q, f"HTTP {response.status_code}: {_error_text(response)}")
        results: list[dict[str, Any]] = response.json().get("results", [])
        for result in results:
            if "error" in result:
                raise InfluxQueryError(q, str(result["error"]))
        return results

    def execute(self, q: str) -> None:
        """Run a statement that changes the server (CREATE, DROP, SELECT INTO)."""
        self.query(q, post=True)

    def series(self, q: str) -> list[dict[str, Any]]:
        """All series of a single-statement query."""
        results = self.query(q)
        return list(results[0].get("series", [])) if results else []

    def stream(self, q: str, chunk_size: int = QUERY_CHUNK_SIZE) -> Iterator[dict[str, Any]]:
        """Run a query chunked and yield its series chunks one at a time (constant memory)."""
        params = {
            "db": self.database,
            "q": q,
            "epoch": "s",
            "chunked": "true",
            "chunk_size": str(chunk_size),
        }
        try:
            response = self._session.get(
                f"{self.url}/query", params=params, stream=True, timeout=QUERY_TIMEOUT_S
            )
        except requests.RequestException as exc:
            raise InfluxQueryError(q, f"InfluxDB did not answer: {exc}") from exc
        with response:
            if response.status_code >= 300:
                raise InfluxQueryError(q, f"HTTP {response.status_code}: {_error_text(response)}")
            for line in response.iter_lines(chunk_size=65536):
                if not line:
                    continue
                chunk = json.loads(line)
                for result in chunk.get("results", []):
                    if "error" in result:
                        raise InfluxQueryError(q, str(result["error"]))
                    yield from result.get("series", [])


def _error_text(response: requests.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text.strip()[:500] or response.reason
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    return str(body)[:500]


def quote_ident(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
