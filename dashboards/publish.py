"""``commons dashboards publish``: the dashboards into a running Grafana, city and areas public.

Through Grafana's HTTP API with grafana-client, using only documented endpoints: ``GET
/api/health``, ``GET/POST /api/folders``, ``GET /api/search``, ``GET /api/dashboards/uid/:uid``,
``POST /api/dashboards/db`` and the public dashboards API (``GET/POST
/api/dashboards/uid/:uid/public-dashboards``, ``PATCH .../public-dashboards/:pubUid``).

Idempotent: a dashboard whose stored JSON already holds everything the generated one says is
not saved again (Grafana would bump its version), and a public dashboard that is already
enabled with the same settings is left alone, so a second run reports that nothing changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException
from grafana_foundation_sdk.builders import publicdashboard
from grafana_foundation_sdk.models.publicdashboard import PublicDashboard
from niquests.exceptions import RequestException

from dashboards.boards import PUBLIC_TAG, TAG

FOLDER_UID = "sensor-commons"
FOLDER_TITLE = "Sensor Commons"
# Keys Grafana manages itself on a stored dashboard.
SERVER_KEYS = ("id", "version")
PUBLIC_UNCHANGED = "public, unchanged"
TIMEOUT_S = 10.0


class GrafanaError(Exception):
    """Grafana answered with an error (or not at all)."""

    def __init__(self, url: str, action: str, status: int, message: str) -> None:
        detail = f"HTTP {status}: {message}" if status else message
        super().__init__(f"{url}: {action}: {detail}")
        self.url = url
        self.action = action
        self.status = status
        self.message = message


class GrafanaAccessError(GrafanaError):
    """The token is missing rights (401/403)."""

    def __init__(self, url: str, action: str, status: int, message: str) -> None:
        super().__init__(url, action, status, message)
        self.args = (
            f"{url}: the token may not {action} (HTTP {status}: {message}). Publishing needs a "
            "service account token with the Editor role (Admin to create the folder the first "
            "time) and public dashboards enabled on the server.",
        )


@dataclass
class Published:
    title: str
    uid: str
    action: str  # created, updated, unchanged
    public_action: str | None = None  # made public, updated, unchanged; None: not public
    public_url: str | None = None


@dataclass
class PublishReport:
    url: str
    folder_created: bool = False
    dashboards: list[Published] = field(default_factory=list)
    others: list[str] = field(default_factory=list)  # tagged ours on the server, not generated

    @property
    def changed(self) -> bool:
        return self.folder_created or any(
            d.action != "unchanged" or d.public_action not in (None, PUBLIC_UNCHANGED)
            for d in self.dashboards
        )

    def lines(self) -> list[str]:
        out = []
        if self.folder_created:
            out.append(f"folder {FOLDER_TITLE!r} created")
        for d in self.dashboards:
            public = f", {d.public_action}" if d.public_action else ""
            out.append(f"{d.action:9} {d.uid:40} {d.title}{public}")
        for uid in self.others:
            out.append(f"left alone {uid}: on the server with our tag, no longer generated")
        links = [d for d in self.dashboards if d.public_url]
        if links:
            out.append("public links:")
            out.extend(f"  {d.title}: {d.public_url}" for d in links)
        out.append("Grafana updated" if self.changed else "nothing changed: Grafana was up to date")
        return out


def contains(stored: Any, ours: Any) -> bool:
    """Whether ``stored`` holds every key and value of ``ours`` (lists item by item)."""
    if isinstance(ours, dict):
        return isinstance(stored, dict) and all(
            k in stored and contains(stored[k], v) for k, v in ours.items()
        )
    if isinstance(ours, list):
        return (
            isinstance(stored, list)
            and len(stored) == len(ours)
            and all(contains(s, o) for s, o in zip(stored, ours, strict=True))
        )
    return bool(stored == ours)


class Grafana:
    """The few calls the publisher makes, with errors turned into :class:`GrafanaError`."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url.rstrip("/")
        self.api = GrafanaApi.from_url(self.url, credential=token, timeout=TIMEOUT_S)

    def call(self, method: str, path: str, action: str, body: Any = None) -> Any:
        try:
            request = getattr(self.api.client, method)
            return request(path, json=body) if body is not None else request(path)
        except GrafanaClientError as exc:
            message = _message(exc.response)
            if exc.status_code in (401, 403):
                raise GrafanaAccessError(self.url, action, exc.status_code, message) from None
            raise GrafanaError(self.url, action, exc.status_code, message) from None
        except GrafanaException as exc:
            raise GrafanaError(self.url, action, exc.status_code, str(exc)) from None
        except RequestException as exc:  # refused, reset, bad address: grafana-client lets it by
            raise GrafanaError(self.url, action, 0, f"not reachable ({exc})") from None

    def get_or_none(self, path: str, action: str) -> Any:
        try:
            return self.call("GET", path, action)
        except GrafanaError as exc:
            if exc.status == 404:
                return None
            raise


def _message(response: Any) -> str:
    if isinstance(response, dict) and "message" in response:
        return str(response["message"])
    return str(response)


def load_dashboards(json_dir: Path) -> list[dict[str, Any]]:
    paths = sorted(json_dir.glob("*.json"))
    if not paths:
        raise GrafanaError(str(json_dir), "read dashboards", 0, "no *.json files there")
    return [json.loads(p.read_text()) for p in paths]


def publish_folder(url: str, token: str, json_dir: Path) -> PublishReport:
    return publish(Grafana(url, token), load_dashboards(json_dir))


def publish(grafana: Grafana, dashboards: list[dict[str, Any]]) -> PublishReport:
    report = PublishReport(grafana.url)
    health = grafana.call("GET", "/health", "answer its health check")
    if not isinstance(health, dict) or health.get("database") != "ok":
        raise GrafanaError(grafana.url, "answer its health check", 0, f"unhealthy: {health}")
    if grafana.get_or_none(f"/folders/{FOLDER_UID}", "read the folder") is None:
        grafana.call(
            "POST", "/folders", "create a folder", {"uid": FOLDER_UID, "title": FOLDER_TITLE}
        )
        report.folder_created = True
    for dashboard in dashboards:
        report.dashboards.append(_publish_one(grafana, dashboard))
    ours = {d["uid"] for d in dashboards}
    found = grafana.call("GET", f"/search?type=dash-db&tag={TAG}", "search dashboards")
    report.others = sorted(
        str(hit["uid"]) for hit in found if isinstance(hit, dict) and hit.get("uid") not in ours
    )
    return report


def _publish_one(grafana: Grafana, dashboard: dict[str, Any]) -> Published:
    uid = str(dashboard["uid"])
    title = str(dashboard.get("title", uid))
    stored = grafana.get_or_none(f"/dashboards/uid/{uid}", "read dashboards")
    ours = {k: v for k, v in dashboard.items() if k not in SERVER_KEYS}
    if stored is None:
        action = "created"
    elif contains(stored.get("dashboard"), ours) and (
        stored.get("meta", {}).get("folderUid") == FOLDER_UID
    ):
        action = "unchanged"
    else:
        action = "updated"
    if action != "unchanged":
        grafana.call(
            "POST",
            "/dashboards/db",
            "save dashboards",
            {
                "dashboard": {**ours, "id": None},
                "folderUid": FOLDER_UID,
                "overwrite": True,
                "message": "commons dashboards publish",
            },
        )
    published = Published(title, uid, action)
    if PUBLIC_TAG in dashboard.get("tags", []):
        _make_public(grafana, published)
    return published


def wanted_public(dashboard_uid: str) -> PublicDashboard:
    """The public dashboard settings we want, as the SDK's model."""
    return (
        publicdashboard.PublicDashboard()
        .dashboard_uid(dashboard_uid)
        .is_enabled(True)
        .time_selection_enabled(True)
        .annotations_enabled(True)
        .build()
    )


def _same_settings(a: PublicDashboard, b: PublicDashboard) -> bool:
    return (a.is_enabled, a.time_selection_enabled, a.annotations_enabled) == (
        b.is_enabled,
        b.time_selection_enabled,
        b.annotations_enabled,
    )


def _make_public(grafana: Grafana, published: Published) -> None:
    path = f"/dashboards/uid/{published.uid}/public-dashboards"
    wanted = wanted_public(published.uid)
    found = grafana.get_or_none(path, "read public dashboard settings")
    if found is None:
        answer = grafana.call("POST", path, "make dashboards public", wanted.to_json())
        published.public_action = "made public"
    else:
        current = PublicDashboard.from_json(found)
        if _same_settings(current, wanted):
            answer = found
            published.public_action = PUBLIC_UNCHANGED
        else:
            wanted.uid, wanted.access_token = current.uid, current.access_token
            answer = grafana.call(
                "PATCH", f"{path}/{current.uid}", "change public dashboards", wanted.to_json()
            )
            published.public_action = "public settings updated"
    token = PublicDashboard.from_json(answer).access_token
    published.public_url = f"{grafana.url}/public-dashboards/{token}"
