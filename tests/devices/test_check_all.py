"""service.check_all: a batch validated together gives what check() gives each item on its own."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from linli.devices import service
from linli.devices.events import Envelope
from tests.devices.helpers import T0, envelope, plate_read

SERIAL = "DS-TCG227-TF-S01"


def _one_of_each_payload() -> list[dict[str, Any]]:
    """An event of every payload model, with defaults left out, explicit nulls, tuples and a time."""
    at = T0 + timedelta(seconds=1)
    return [
        envelope(SERIAL, "access.granted", payload={"credential": "card", "card_no": "0012", "reason": None}),
        envelope(SERIAL, "access.denied", payload={"credential": "face", "similarity": 0.41, "door": "北门"}),
        plate_read(SERIAL, "陕A12345", at=at),
        envelope(SERIAL, "vehicle.exited", payload={"plate": "陕D67890", "confidence": 1}),
        envelope(SERIAL, "patrol.checked_in", payload={"checkpoint": "CP-7", "route": None}),
        envelope(SERIAL, "sensor.reading", payload={"quantity": "temperature", "value": 21, "unit": "°C"}),
        envelope(SERIAL, "meter.reading", payload={"quantity": "water", "value": 12.5, "unit": "m3"}),
        envelope(SERIAL, "alarm.raised", payload={"alarm": "smoke", "level": "critical"}),
        envelope(SERIAL, "alarm.cleared", payload={"alarm": "smoke"}),
        envelope(
            SERIAL,
            "throw.detected",
            payload={
                "confidence": 0.9,
                "trajectory": [[0, 1, 2], [0.04, 1.5, 9]],
                "image_size": [1920, 1080],
            },
        ),
        envelope(SERIAL, "motion.detected", payload={"kind": "intrusion", "target": "human"}),
        envelope(
            SERIAL, "device.heartbeat", payload={"status": "ok", "last_seen": "2026-12-04T08:30:00+08:00"}
        ),
        envelope(SERIAL, "device.heartbeat", payload={}),
        {
            **envelope(SERIAL, "access.granted", payload={"credential": "qr"}),
            "media": [{"kind": "image", "ref": "https://cam.example/p/1.jpg", "label": "face"}],
        },
    ]


def _same(batch: list[Any], *, nul_free: bool = False) -> list[service.Checked]:
    together = service.check_all(batch, nul_free=nul_free)
    alone = [service.check(item, nul_free=nul_free) for item in batch]
    assert len(together) == len(alone) == len(batch)
    for mine, theirs, item in zip(together, alone, batch, strict=True):
        assert mine.item is (item.item if isinstance(item, service.Checked) else item)
        assert mine.payload == theirs.payload
        if theirs.envelope is None:
            assert mine.envelope is None
        else:
            assert mine.envelope is not None
            assert mine.envelope.model_dump() == theirs.envelope.model_dump()
    return together


def test_a_valid_batch_is_checked_as_each_item_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    batch = _one_of_each_payload()
    checked = _same(batch)
    # and together indeed: not item by item
    monkeypatch.setattr(service, "check", lambda *_a, **_k: pytest.fail("checked item by item"))
    assert [c.payload for c in service.check_all(batch)] == [c.payload for c in checked]
    assert all(isinstance(c.payload, dict) for c in checked)
    # normalised as the models write them: defaults in, nulls out, tuples as lists, times as text
    assert checked[0].payload == {"credential": "card", "door": "", "direction": "unknown", "card_no": "0012"}
    assert checked[9].payload["trajectory"] == [[0.0, 1.0, 2.0], [0.04, 1.5, 9.0]]
    assert checked[11].payload == {"status": "ok", "last_seen": "2026-12-04T08:30:00+08:00"}
    assert checked[13].envelope is not None and checked[13].envelope.media[0].content_type == "image/jpeg"


def test_an_invalid_payload_is_refused_by_its_own_fields_and_its_group_still_passes() -> None:
    batch = _one_of_each_payload()
    batch[3] = envelope(SERIAL, "vehicle.exited", payload={"plate_colour": "pink"})  # no plate, bad colour
    batch.append(envelope(SERIAL, "sensor.reading", payload={"quantity": "t", "value": "warm", "unit": "C"}))
    checked = _same(batch)
    assert isinstance(checked[3].payload, str)
    assert "payload.plate" in checked[3].payload and "payload.plate_colour" in checked[3].payload
    assert isinstance(checked[2].payload, dict)  # the other vehicle event of the group
    assert isinstance(checked[-1].payload, str) and "payload.value" in checked[-1].payload
    assert [i for i, c in enumerate(checked) if isinstance(c.payload, str)] == [3, len(batch) - 1]


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "x", "device": SERIAL, "type": "door.opened", "occurred_at": T0.isoformat(), "payload": {}},
        {"id": "x", "device": SERIAL, "type": "device.heartbeat", "occurred_at": "2026-12-04 08:30"},
        "not an object",
        [1, 2],
    ],
    ids=["unknown type", "naive time and no payload", "text", "list"],
)
def test_an_invalid_envelope_or_item_leaves_the_others_checked(bad: Any) -> None:
    batch = [*_one_of_each_payload(), bad, plate_read(SERIAL, "陕A54321")]
    checked = _same(batch)
    assert checked[-2].envelope is None and isinstance(checked[-2].payload, str)
    assert checked[-2].payload.startswith("schema: ")
    assert isinstance(checked[-1].payload, dict)


def test_nul_characters_are_refused_unless_the_caller_knows_there_are_none() -> None:
    batch = [
        envelope(SERIAL, "alarm.raised", payload={"alarm": "tamper", "detail": "lid\x00open"}),
        envelope(SERIAL, "device.heartbeat", uid="hb\x00"),
        envelope(SERIAL),
    ]
    checked = _same(batch)
    assert ["NUL" in str(c.payload) for c in checked] == [True, True, False]
    # nul_free: the body's JSON has no \u0000 (receive.read_json), so nothing is searched
    assert all(isinstance(c.payload, dict) for c in _same(batch[2:], nul_free=True))


def test_envelopes_and_items_checked_already_pass_as_they_are() -> None:
    first = service.check(plate_read(SERIAL, "陕A12345"))
    model = Envelope.model_validate(envelope(SERIAL))
    checked = _same([first, model, envelope(SERIAL, uid="raw")])
    assert checked[0] is first
    assert checked[1].envelope is model
