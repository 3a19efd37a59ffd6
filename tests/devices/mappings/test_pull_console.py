"""The pull-source form of the console: saved through pull.save, refused per field, scoped, poll now."""

from __future__ import annotations

import json
from datetime import timedelta

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from linli.core.audit import AuditEntry
from linli.core.auth.service import Principal
from linli.core.timeutil import utcnow
from linli.devices.mappings import pull, service
from linli.devices.mappings.models import PullSource
from linli.devices.models import StoredEvent
from tests.builders import World
from tests.devices.helpers import T0, device
from tests.devices.mappings.test_pull import DOOR_API
from tests.devices.mappings.vendor_api import STAMP, Vendor
from tests.web.helpers import Console

TOKEN = "Bearer s3cr3t-t0ken-4711"


def _form(url: str, **overrides: str) -> dict[str, str]:
    """The form as a person fills it for a door controller's query API."""
    values = {
        "url": url,
        "method": "GET",
        "params": "startTime={cursor}\npageNo={page}\npageSize={size}",
        "headers": f"Authorization: {TOKEN}",
        "adapter": "mapping:door-api",
        "interval_s": "120",
        "timeout_s": "2",
        "cursor.kind": "since",
        "cursor.format": STAMP,
        "cursor.overlap_s": "90",
        "cursor.start": "2026-03-05T00:00:00+00:00",
        "paging": "1",
        "paging.size": "2",
        "paging.start": "1",
        "paging.max_pages": "10",
        "enabled": "1",
    }
    return {**values, **overrides}


def _post(console: Console, url: str, data: dict[str, str]):  # type: ignore[no-untyped-def]
    return console.client.post(url, data={**data, "csrf": console.csrf()}, follow_redirects=False)


def _source(session: Session, device_id: int) -> PullSource | None:
    session.expire_all()
    return session.scalar(select(PullSource).where(PullSource.device_id == device_id))


def test_the_form_saves_a_source_with_masked_headers_that_stay_when_left_blank(
    console: Console, session: Session, world: World, vendor: tuple[Vendor, str]
) -> None:
    _, url = vendor
    reader, _ = device(session, world.tianfu, serial="MJ-TF-F-01", kind="card_reader")
    service.create(session, Principal.system(), community_code="", document=DOOR_API)
    session.commit()
    console.login("shequ")

    empty = console.get(f"/devices/{reader.id}/pull-source")
    assert empty.status_code == 200 and "mapping:door-api" in empty.text  # the mapping is offered
    forged = console.client.post(f"/devices/{reader.id}/pull-source", data={**_form(url), "csrf": "forged"})
    assert forged.status_code == 403 and _source(session, reader.id) is None
    saved = _post(console, f"/devices/{reader.id}/pull-source", _form(url))
    assert saved.status_code == 303 and saved.headers["location"] == "/pull-sources?notice=saved"
    source = _source(session, reader.id)
    assert source is not None
    assert source.config["params"] == {"startTime": "{cursor}", "pageNo": "{page}", "pageSize": "{size}"}
    assert (source.config["interval_s"], source.config["timeout_s"]) == (120, 2.0)
    assert source.config["cursor"] == {
        "kind": "since",
        "start": "2026-03-05T00:00:00+00:00",
        "format": STAMP,
        "overlap_s": 90,
    }
    assert source.config["paging"] == {"size": 2, "start": 1, "max_pages": 10}
    assert source.enabled and source.cursor == "2026-03-05T00:00:00+00:00"
    assert json.loads(source.secret_headers) == {"Authorization": TOKEN}
    stored = session.execute(text("SELECT secret_headers FROM device_pull_sources")).scalar_one()
    assert TOKEN not in stored  # encrypted at rest
    audits = list(session.scalars(select(AuditEntry).where(AuditEntry.action == "device.pull_source")))
    assert [(a.actor, a.target_id) for a in audits] == [("shequ", str(reader.id))]
    assert TOKEN not in json.dumps(audits[0].detail)

    listed = console.get("/pull-sources?notice=saved")
    assert "拉取源已保存" in listed.text and url in listed.text and "MJ-TF-F-01" in listed.text
    again = console.get(f"/devices/{reader.id}/pull-source")
    assert "Authorization: ••••••" in again.text and TOKEN not in again.text
    assert again.headers["cache-control"] == "no-store"

    # saved again with the header field blank and paging off: the token stays, paging goes
    form = _form(url, headers="", interval_s="300")
    form.pop("paging")
    assert _post(console, f"/devices/{reader.id}/pull-source", form).status_code == 303
    source = _source(session, reader.id)
    assert source is not None and json.loads(source.secret_headers) == {"Authorization": TOKEN}
    assert source.config["interval_s"] == 300 and source.config["paging"] is None
    # ... and removed when asked to
    assert (
        _post(console, f"/devices/{reader.id}/pull-source", {**form, "clear_headers": "1"}).status_code == 303
    )
    source = _source(session, reader.id)
    assert source is not None and json.loads(source.secret_headers) == {}


def test_a_bad_url_or_interval_is_refused_with_the_field_named(
    console: Console, session: Session, world: World
) -> None:
    reader, _ = device(session, world.tianfu, serial="MJ-TF-F-02", kind="card_reader")
    session.commit()
    console.login("shequ")
    url = f"/devices/{reader.id}/pull-source"
    good = "http://192.168.1.20/api/records"
    adapter = "mapping:access_record_export"

    bad_url = _post(console, url, _form("ftp://192.168.1.20/records", adapter=adapter))
    assert bad_url.status_code == 422
    assert 'data-testid="error-url"' in bad_url.text and "地址必须以 http:// 或 https:// 开头" in bad_url.text
    assert "ftp://192.168.1.20/records" in bad_url.text  # the form keeps what was typed
    assert TOKEN not in bad_url.text  # but not the secret header

    both = _post(console, url, _form(good, adapter=adapter, interval_s="5", **{"paging.size": "abc"}))
    assert both.status_code == 422
    assert '<small class="bad field-error" data-testid="error-interval_s">应不小于 10</small>' in both.text
    assert 'data-testid="error-paging.size">应为整数<' in both.text
    assert 'data-testid="error-url"' not in both.text

    unknown = _post(console, url, _form(good, adapter="mapping:nothing-like-it"))
    assert unknown.status_code == 422 and 'data-testid="error-adapter"' in unknown.text

    no_sep = _post(console, url, _form(good, adapter=adapter, headers="Authorization Bearer x"))
    assert no_sep.status_code == 422 and 'data-testid="error-headers"' in no_sep.text
    assert "第 1 行" in no_sep.text
    assert _source(session, reader.id) is None


def test_a_worker_cannot_configure_or_poll_another_communitys_device(
    console: Console, session: Session, world: World
) -> None:
    reader, _ = device(session, world.tianfu, serial="MJ-TF-F-03", kind="card_reader")
    pull.save(
        session,
        Principal.system(),
        device_id=reader.id,
        config={"url": "http://192.168.1.20/api/records", "adapter": "mapping:access_record_export"},
        now=T0,
    )
    other, _ = device(session, world.yuyu, serial="MJ-YY-F-01", kind="card_reader")
    session.commit()
    console.login("shequ2")  # Yuyu's worker
    assert console.get(f"/devices/{reader.id}/pull-source").status_code == 404
    refused = _post(console, f"/devices/{reader.id}/pull-source", _form("http://10.0.0.1/x"))
    assert refused.status_code == 404
    assert _post(console, f"/devices/{reader.id}/pull-source/poll", {}).status_code == 404
    source = _source(session, reader.id)
    assert source is not None and source.config["url"] == "http://192.168.1.20/api/records"
    listed = console.get("/pull-sources").text
    assert "MJ-TF-F-03" not in listed and "MJ-YY-F-01" in listed  # only their own device to pick
    assert console.get(f"/devices/{other.id}/pull-source").status_code == 200


def test_poll_now_asks_the_device_at_once_and_is_audited(
    console: Console, session: Session, world: World, vendor: tuple[Vendor, str]
) -> None:
    api, url = vendor
    recent = utcnow() - timedelta(minutes=5)
    api.add(4001, recent)
    api.add(4002, recent + timedelta(minutes=1))
    reader, _ = device(session, world.tianfu, serial="MJ-TF-F-04", kind="card_reader")
    service.create(session, Principal.system(), community_code="", document=DOOR_API)
    session.commit()
    console.login("shequ")
    start = (recent - timedelta(hours=1)).isoformat()
    form = _form(url, **{"cursor.start": start, "interval_s": "3600"})
    assert _post(console, f"/devices/{reader.id}/pull-source", form).status_code == 303
    assert "立即拉取" in console.get(f"/devices/{reader.id}/pull-source").text

    polled = _post(console, f"/devices/{reader.id}/pull-source/poll", {})
    assert polled.status_code == 303 and polled.headers["location"] == "/pull-sources?notice=polled"
    assert set(api.tokens) == {TOKEN}
    session.expire_all()
    uids = session.scalars(select(StoredEvent.event_uid).where(StoredEvent.device_serial == "MJ-TF-F-04"))
    assert sorted(u for u in uids if u.isdigit()) == ["4001", "4002"]
    source = _source(session, reader.id)
    assert source is not None and (source.last_stored, source.failures) == (2, 0)
    audits = session.scalars(select(AuditEntry.actor).where(AuditEntry.action == "device.pull_poll"))
    assert list(audits) == ["shequ"]

    api.mode = "error"
    failed = _post(console, f"/devices/{reader.id}/pull-source/poll", {})
    assert failed.headers["location"] == "/pull-sources?notice=failed"
    listed = console.get("/pull-sources?notice=failed").text
    assert "已拉取，但没有成功" in listed and "连续失败 1 次" in listed and "HTTP 500" in listed


def test_poll_now_over_the_api_is_scoped_and_says_how_it_went(
    client,
    login,
    session: Session,
    world: World,
    vendor: tuple[Vendor, str],  # type: ignore[no-untyped-def]
) -> None:
    api, url = vendor
    api.add(5001, utcnow() - timedelta(minutes=3))
    reader, _ = device(session, world.tianfu, serial="MJ-TF-F-05", kind="card_reader")
    service.create(session, Principal.system(), community_code="", document=DOOR_API)
    config = {
        "url": url,
        "params": {"startTime": "{cursor}", "pageNo": "{page}", "pageSize": "{size}"},
        "adapter": "mapping:door-api",
        "cursor": {"kind": "since", "format": STAMP, "start": (utcnow() - timedelta(hours=1)).isoformat()},
        "paging": {"size": 10},
    }
    pull.save(session, Principal.system(), device_id=reader.id, config=config, now=utcnow())
    session.commit()
    other = client.post(f"/api/v1/devices/{reader.id}/pull-source/poll", headers=login("shequ2"))
    assert other.status_code == 404 and api.requests == []
    done = client.post(f"/api/v1/devices/{reader.id}/pull-source/poll", headers=login("shequ"))
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["ok"] is True and body["source"]["last_stored"] == 1 and body["source"]["failures"] == 0
    bad = client.put(
        f"/api/v1/devices/{reader.id}/pull-source",
        headers=login("shequ"),
        json={"config": {**config, "interval_s": 5}},
    )
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "interval_s"
