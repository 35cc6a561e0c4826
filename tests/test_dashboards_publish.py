"""``commons dashboards publish`` against a Grafana HTTP API double (tests/grafana_double.py):
no real Grafana can run here, so the double implements only the documented endpoints used.

The first run creates the folder and the dashboards, makes the city and neighbourhood ones
public and prints their links; a second run changes nothing and says so; a dashboard changed
on the server is put back; a token without the rights is refused with a clear message.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from grafana_double import GrafanaState, grafana_double
from harness import RunCommons

from dashboards.build import GENERATED_DIR
from dashboards.publish import FOLDER_UID

EDITOR, VIEWER = "editor-token-1", "viewer-token-1"


@pytest.fixture
def grafana() -> Iterator[tuple[str, GrafanaState]]:
    with grafana_double({EDITOR: "Editor", VIEWER: "Viewer"}) as running:
        yield running


def _token_file(tmp_path: Path, token: str) -> Path:
    path = tmp_path / f"{token}.token"
    path.write_text(token + "\n")
    path.chmod(0o600)
    return path


def _generated() -> dict[str, dict[str, object]]:
    return {
        str(d["uid"]): d
        for d in (json.loads(p.read_text()) for p in sorted(GENERATED_DIR.glob("*.json")))
    }


def test_publish_creates_then_changes_nothing(
    grafana: tuple[str, GrafanaState], run_commons: RunCommons, tmp_path: Path
) -> None:
    url, state = grafana
    # A dashboard of ours that is no longer generated (its area lost its last node).
    old = {"uid": "commons-area-gone", "title": "Gone", "tags": ["sensor-commons", "public"]}
    state.dashboards[old["uid"]] = {"dashboard": {**old, "id": 99}, "folderUid": None, "version": 1}
    token = str(_token_file(tmp_path, EDITOR))
    first = run_commons("dashboards", "publish", "--url", url, "--token-file", token)
    assert first.returncode == 0, first.stderr
    generated = _generated()
    assert set(state.dashboards) == {*generated, "commons-area-gone"}
    assert "left alone commons-area-gone" in first.stdout
    assert all(state.dashboards[uid]["folderUid"] == FOLDER_UID for uid in generated)
    public = {uid for uid, d in generated.items() if "public" in d["tags"]}  # type: ignore[operator]
    assert public == set(state.public) and "commons-operator" not in public
    for uid, config in state.public.items():
        assert config["dashboardUid"] == uid and config["isEnabled"] is True
        assert config["timeSelectionEnabled"] is True and config["annotationsEnabled"] is True
    links = re.findall(rf"{re.escape(url)}/public-dashboards/(\w+)", first.stdout)
    assert sorted(links) == sorted(c["accessToken"] for c in state.public.values())
    lines = first.stdout.splitlines()
    assert sum(line.startswith("created ") for line in lines) == len(generated)
    assert lines[-1] == "Grafana updated"

    writes = len(state.writes)
    second = run_commons("dashboards", "publish", "--url", url, "--token-file", token)
    assert second.returncode == 0, second.stderr
    assert len(state.writes) == writes, state.writes[writes:]
    assert "nothing changed" in second.stdout
    assert sorted(re.findall(rf"{re.escape(url)}/public-dashboards/(\w+)", second.stdout)) == (
        sorted(links)
    )

    # Someone edits a dashboard in Grafana, and turns a public one off: the next run repairs both.
    stored = state.dashboards["commons-city"]["dashboard"]
    stored["title"] = "edited by hand"
    state.public["commons-area-riverside"]["isEnabled"] = False
    third = run_commons("dashboards", "publish", "--url", url, "--token-file", token)
    assert third.returncode == 0, third.stderr
    assert (
        state.dashboards["commons-city"]["dashboard"]["title"] == generated["commons-city"]["title"]
    )
    assert state.public["commons-area-riverside"]["isEnabled"] is True
    assert re.search(r"updated\s+commons-city", third.stdout)
    assert "public settings updated" in third.stdout


def test_a_token_without_rights_is_refused_clearly(
    grafana: tuple[str, GrafanaState], run_commons: RunCommons, tmp_path: Path
) -> None:
    url, state = grafana
    done = run_commons(
        "dashboards", "publish", "--url", url, "--token-file", str(_token_file(tmp_path, VIEWER))
    )
    assert done.returncode == 4
    assert "HTTP 403" in done.stderr and "may not" in done.stderr and "Editor" in done.stderr
    assert "Traceback" not in done.stderr
    assert state.writes == [] and state.dashboards == {}

    unknown = run_commons(
        "dashboards", "publish", "--url", url, "--token-file", str(_token_file(tmp_path, "nope"))
    )
    assert unknown.returncode == 4 and "HTTP 401" in unknown.stderr


def test_an_unreachable_grafana_is_an_error_not_a_traceback(
    run_commons: RunCommons, tmp_path: Path
) -> None:
    with grafana_double({}) as (url, _):
        pass  # stopped: nothing listens on its port any more
    done = run_commons(
        "dashboards", "publish", "--url", url, "--token-file", str(_token_file(tmp_path, EDITOR))
    )
    assert done.returncode == 1
    assert url in done.stderr and "Traceback" not in done.stderr
