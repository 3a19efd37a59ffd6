"""Patrol wand (巡更棒) CSV exports: one check-in per row, bad rows reported with their row number."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from linli.devices import adapters
from linli.devices.adapters import AdapterParseError
from linli.devices.adapters.patrol_csv.adapter import parse, parse_rows
from linli.devices.events import Envelope, EventType

Sample = Callable[[str], bytes]
CST = timezone(timedelta(hours=8))
CSV = {"Content-Type": "text/csv"}
UPLOADED = datetime(2024, 5, 7, 0, 30, tzinfo=UTC)


def check_in(
    event_id: str, device: str, at: datetime, checkpoint: str, guard: str, route: str | None = None
) -> Envelope:
    """The envelope one good export row should become."""
    payload = {"checkpoint": checkpoint, "guard": guard} | ({"route": route} if route else {})
    return Envelope(
        id=event_id,
        device=device,
        type=EventType.PATROL_CHECKED_IN,
        occurred_at=at,
        received_at=UPLOADED,
        source="mapping:patrol_wand_csv",
        payload=payload,
    )


def test_gb18030_export_keeps_good_rows_and_reports_bad_rows_by_row_number(sample: Sample) -> None:
    envelopes, errors = parse_rows(sample("mapping/patrol_export_gb18030.csv"), CSV, received_at=UPLOADED)
    assert envelopes == [
        check_in(
            "patrol_wand_csv:d8737df419873b52008ef8234ade3878d1361b56",
            "XG-A0031",
            datetime(2024, 5, 6, 21, 0, 12, tzinfo=CST),
            "1号楼东门",
            "张建国",
            "夜间一线",
        ),
        check_in(
            "patrol_wand_csv:3f2e89c20ab82d98f0e0e4c69d9bb2403b6333f3",
            "XG-A0031",
            datetime(2024, 5, 6, 21, 7, 45, tzinfo=CST),
            "2号楼地下车库",
            "张建国",
            "夜间一线",
        ),
        check_in(
            "patrol_wand_csv:fb8655dfdc0a8d15b5dc312f40793f785df240ef",
            "XG-A0032",
            datetime(2024, 5, 6, 21, 41, 9, tzinfo=CST),
            "西门岗亭",
            "李卫东",
            "夜间二线",
        ),
    ]
    assert [envelope.occurred_at.utcoffset() for envelope in envelopes] == [timedelta(hours=8)] * 3
    assert [(index, reason.split(":")[0]) for index, reason in errors] == [
        (2, "第4行"),
        (3, "第5行"),
        (4, "第6行"),
    ]
    assert errors[0][1] == "第4行: payload.checkpoint: 缺少必填值（路径 巡检点）"
    assert errors[1][1].startswith(
        "第5行: occurred_at: 时间 '2024-05-06 25:10:00' 不符合格式 %Y-%m-%d %H:%M:%S"
    )
    assert errors[2][1] == "第6行: 列数 5 与表头列数 6 不一致"


def test_the_adapter_rejects_a_file_with_a_bad_row_naming_it(sample: Sample) -> None:
    with pytest.raises(AdapterParseError, match=r"^第4行: payload\.checkpoint") as caught:
        parse(sample("mapping/patrol_export_gb18030.csv"), CSV)
    assert caught.value.record == 2


def test_utf8_export_with_bom_and_without_a_route_column(sample: Sample) -> None:
    envelopes = adapters.get("patrol_csv").parse(
        sample("mapping/patrol_export_utf8_bom.csv"), CSV, device="XG-B9"
    )
    assert [(e.device, e.payload, e.occurred_at) for e in envelopes] == [
        ("XG-B9", {"checkpoint": "北门岗亭", "guard": "赵敏"}, datetime(2024, 5, 7, 6, 0, 3, tzinfo=CST)),
        ("XG-B9", {"checkpoint": "5号楼屋面", "guard": "赵敏"}, datetime(2024, 5, 7, 6, 12, 40, tzinfo=CST)),
    ]


def test_a_missing_required_column_rejects_the_whole_file(sample: Sample) -> None:
    with pytest.raises(AdapterParseError, match=r"^CSV 表头缺少列: 巡检点（payload\.checkpoint）$"):
        parse_rows(sample("mapping/patrol_export_missing_column.csv"), CSV)


def test_reimporting_the_same_export_gives_the_same_ids(sample: Sample) -> None:
    raw = sample("mapping/patrol_export_gb18030.csv")
    first, _ = parse_rows(raw, CSV, received_at=UPLOADED)
    again, _ = parse_rows(raw, CSV, received_at=UPLOADED + timedelta(days=1))
    assert [envelope.id for envelope in first] == [envelope.id for envelope in again]
    assert len({envelope.id for envelope in first}) == 3


def test_a_file_in_an_unknown_encoding_is_refused(sample: Sample) -> None:
    raw = sample("mapping/patrol_export_utf8_bom.csv").decode("utf-8-sig").encode("utf-16")
    with pytest.raises(AdapterParseError, match="无法按 utf-8-sig/gb18030 编码解码"):
        parse_rows(raw, CSV)
