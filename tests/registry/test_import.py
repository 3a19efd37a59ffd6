"""Import from the sheets staff keep: synonyms, idempotency, rejected rows, bad files, injection on export."""

from __future__ import annotations

import io
import json
from datetime import date

import openpyxl
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from linli.core import tabular
from linli.core.audit import AuditEntry
from linli.core.auth.service import Principal
from linli.registry import exports, importers
from linli.registry.models import House, Person, Vehicle
from tests.builders import resident_id

HEADERS = [
    "序号",
    "姓名",
    "公民身份号码",
    "性别",
    "联系电话",
    "楼号",
    "单元",
    "门牌号",
    "与户主关系",
    "人员类别",
    "车牌号码",
    "建筑面积",
]


def sheet(rows: list[list[object]], *, title: str | None = "天府和苑社区人口登记表") -> bytes:
    """An .xlsx like the ones community offices keep: a title row, then the header, then data."""
    wb = openpyxl.Workbook()
    ws = wb.active
    if title:
        ws.append([title])
        ws.merge_cells(start_row=1, start_column=1, end_row=1, end_column=len(HEADERS))
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
        for cell in ws[ws.max_row]:
            if isinstance(cell.value, str) and cell.value.startswith("="):
                cell.data_type = "s"  # text that looks like a formula, as a CSV-born sheet has it
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def good_rows() -> list[list[object]]:
    owner, wife, son = resident_id(male=True), resident_id(male=False), resident_id(born=date(1985, 6, 1))
    return [
        [1, "王建国", owner, "男", "138 0013 8000", "3号楼", "2", "501", "户主", "", "陕A·12345", 89.5],
        [2, "李秀兰", wife.lower(), "女", "", "3", "2单元", "501室", "配偶", "低保", "", ""],
        # Full-width digits and a stray space, as pasted from a web form.
        [
            3,
            " 王 磊",
            son.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
            "男",
            "13912345678",
            "3",
            "2",
            "502",
            "户主",
            "",
            "",
            "",
        ],
    ]


def run(session, data: bytes, community: str, *, dry_run: bool = False, principal=None):  # type: ignore[no-untyped-def]
    table = importers.read(data, "登记表.xlsx", entity="people", max_bytes=20 * 1024 * 1024)
    return importers.import_table(
        session,
        principal or Principal.system(),
        table,
        entity="people",
        community_code=community,
        filename="登记表.xlsx",
        dry_run=dry_run,
    )


def test_import_creates_links_and_is_idempotent(session, world) -> None:
    data = sheet(good_rows())
    first = run(session, data, world.tianfu)
    assert first.summary()["rejected"] == []
    assert (first.created, first.updated, first.unchanged) == (3, 0, 0)
    assert first.bulk == 2  # new people in bulk; the row with a plate goes one by one by design
    assert session.scalar(select(func.count()).select_from(House)) == 2
    assert session.scalar(select(Vehicle.plate)) == "陕A12345"
    second = run(session, data, world.tianfu)
    assert (second.created, second.updated, second.unchanged, second.rejected) == (0, 0, 3, [])
    assert session.scalar(select(func.count()).select_from(Person)) == 3


def test_bad_rows_are_rejected_with_row_and_field_and_good_rows_kept(session, world) -> None:
    rows = good_rows()
    rows.insert(1, [9, "坏号码", "610402195603071230", "男", "", "3", "2", "503", "户主", "", "", ""])
    rows.append([10, "错电话", resident_id(), "男", "12345", "3", "2", "504", "户主", "", "", ""])
    rows.append([11, "错车牌", resident_id(), "男", "", "3", "2", "505", "户主", "", "陕I12345", ""])
    rows.append([12, "缺房号", resident_id(), "男", "", "3", "2", "", "户主", "", "", ""])
    report = run(session, sheet(rows), world.tianfu)
    rejected = {(r.row, r.field) for r in report.rejected}
    # Row numbers are the sheet's: title row 1, header row 2, data from row 3.
    assert rejected == {(4, "id_number"), (7, "phone"), (8, "plate"), (9, "room")}
    assert report.created == 3
    assert all(r.reason for r in report.rejected)
    names = set(session.scalars(select(Person.name)))
    assert names == {"王建国", "李秀兰", "王 磊"}  # the row with the bad plate left no person behind
    error_book = openpyxl.load_workbook(
        io.BytesIO(
            importers.error_report(
                importers.read(sheet(rows), "x.xlsx", entity="people", max_bytes=10**8), report
            )
        )
    )
    first_col = [c.value for c in next(error_book.active.iter_cols(max_col=1))]
    assert first_col[0] == tabular.ERROR_COLUMN and any("phone" in str(v) for v in first_col if v)


def test_dry_run_writes_nothing_but_is_audited(session, world) -> None:
    report = run(session, sheet(good_rows()), world.tianfu, dry_run=True)
    assert report.created == 3 and report.dry_run
    assert session.scalar(select(func.count()).select_from(Person)) == 0
    assert session.scalar(select(AuditEntry.action).where(AuditEntry.action == "import.dry_run")) is not None


def test_import_into_another_community_is_refused(session, world, as_user) -> None:
    from linli.core.errors import NotFound

    with pytest.raises(NotFound):
        run(session, sheet(good_rows()), world.yuyu, principal=as_user("shequ"))


@pytest.mark.parametrize(
    ("payload", "filename", "message"),
    [
        (b"\x89PNG\r\n\x1a\n" + b"\0" * 100, "photo.xlsx", "不是电子表格"),
        (b"", "empty.xlsx", ""),
        (b"%PDF-1.4 hello", "report.pdf", "不是电子表格"),
    ],
)
def test_files_that_are_not_sheets_get_a_clear_error(
    client, login, world, payload, filename, message
) -> None:
    r = client.post(
        "/api/v1/import/registry",
        headers=login("shequ"),
        data={"community": world.tianfu},
        files={"file": (filename, payload)},
    )
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "file"
    assert message in r.json()["error"]["message"]


def test_oversized_upload_is_refused(client, login, world, app_shared) -> None:
    app_shared.state.settings.max_upload_mb = 1
    try:
        r = client.post(
            "/api/v1/import/registry",
            headers=login("shequ"),
            data={"community": world.tianfu},
            files={"file": ("big.csv", b"a" * (2 * 1024 * 1024))},
        )
    finally:
        app_shared.state.settings.max_upload_mb = 20
    assert r.status_code == 413 and "MB" in r.json()["error"]["message"]


def test_api_import_round_trip(client, login, world) -> None:
    headers = login("shequ")
    files = {"file": ("登记表.xlsx", sheet(good_rows()))}
    dry = client.post(
        "/api/v1/import/registry",
        headers=headers,
        data={"community": world.tianfu, "dry_run": "true"},
        files=files,
    ).json()
    assert dry["created"] == 3 and dry["dry_run"] is True
    real = client.post(
        "/api/v1/import/registry", headers=headers, data={"community": world.tianfu}, files=files
    ).json()
    assert (real["created"], real["rejected"]) == (3, [])
    again = client.post(
        "/api/v1/import/registry", headers=headers, data={"community": world.tianfu}, files=files
    ).json()
    assert (again["created"], again["updated"], again["unchanged"]) == (0, 0, 3)


def test_formula_injection_is_neutralised_on_export(session, world, as_user) -> None:
    rows = good_rows()
    rows[0][1] = "=cmd|' /C calc'!A0"
    run(session, sheet(rows), world.tianfu)
    data, count = exports.people_xlsx(session, as_user("shequ"), text="")
    assert count == 3
    ws = openpyxl.load_workbook(io.BytesIO(data)).active
    values = [c.value for row in ws.iter_rows() for c in row]
    assert "'=cmd|' /C calc'!A0" in values
    assert not any(isinstance(v, str) and v.startswith("=") for v in values)
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert any("*" in str(v) for v in values)  # ID numbers leave masked


def test_cli_import_prints_json_summary(tmp_path, settings, engine, world, monkeypatch) -> None:
    from linli.cli import app
    from linli.settings import get_settings

    path = tmp_path / "登记表.xlsx"
    path.write_bytes(sheet(good_rows()))
    monkeypatch.setenv("LINLI_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("LINLI_SECRET_KEY", settings.secret_key)
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        args = ["import", "registry", str(path), "--community", world.xingfu, "--json"]
        dry = runner.invoke(app, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert json.loads(dry.stdout.strip().splitlines()[-1])["created"] == 3
        first = runner.invoke(app, args)
        summary = json.loads(first.stdout.strip().splitlines()[-1])
        assert (summary["created"], summary["rejected"]) == (3, [])
        again = json.loads(runner.invoke(app, args).stdout.strip().splitlines()[-1])
        assert (again["created"], again["unchanged"]) == (0, 3)
        bad = runner.invoke(app, ["import", "registry", str(path), "--community", "999999999999"])
        assert bad.exit_code == 2
    finally:
        _cleanup_committed(engine, world)
        get_settings.cache_clear()


def _cleanup_committed(engine, world) -> None:  # type: ignore[no-untyped-def]
    """The CLI commits for real: remove what it wrote so the session's other tests see a clean world."""
    from sqlalchemy import delete

    from linli.registry.models import Building, ChangeRecord, PersonTag, Residence

    with engine.begin() as conn:
        for model in (Vehicle, PersonTag, Residence, ChangeRecord):
            conn.execute(delete(model).where(model.area_code.startswith(world.xingfu)))
        conn.execute(delete(Person).where(Person.area_code.startswith(world.xingfu)))
        conn.execute(delete(House).where(House.area_code.startswith(world.xingfu)))
        conn.execute(delete(Building).where(Building.area_code.startswith(world.xingfu)))


def test_organisation_sheet_links_the_address(session, world) -> None:
    from linli.registry import organisations
    from linli.registry.validation import gb11714_check_char, gb32100_check_char

    def uscc(code: str) -> str:
        body = "92610400" + code + gb11714_check_char(code)
        return body + gb32100_check_char(body)

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["商户名称", "统一社会信用代码", "单位类型", "负责人", "联系电话", "楼号", "房号"])
    ws.append(["老王修脚店", uscc("MA6XK3LW"), "个体工商户", "王某", "13700001111", "2", "101"])
    ws.append(["坏代码商店", "91610400MA6XK3LW8A", "个体工商户", "李某", "", "2", "102"])
    buf = io.BytesIO()
    wb.save(buf)
    table = importers.read(buf.getvalue(), "商户.xlsx", entity="organisations", max_bytes=10**7)
    report = importers.import_table(
        session, Principal.system(), table, entity="organisations", community_code=world.tianfu
    )
    assert (report.created, [(r.row, r.field) for r in report.rejected]) == (1, [(3, "uscc")])
    (house,) = session.scalars(select(House).where(House.community_code == world.tianfu))
    assert [o.name for o in organisations.at_house(session, house_id=house.id)] == ["老王修脚店"]
    assert importers.detect_entity(buf.getvalue(), "商户.xlsx") == "organisations"
