"""Device sheets: Chinese headers, rejected rows with row/field/reason, re-import changes nothing."""

from __future__ import annotations

import io

import openpyxl

from linli.core import tabular
from linli.core.auth.service import Principal
from linli.registry import places

HEADERS = [
    "序号",
    "设备名称",
    "设备类型",
    "厂商",
    "型号",
    "序列号",
    "安装位置",
    "楼栋",
    "楼层",
    "安装日期",
    "经度",
    "纬度",
]
ROWS = [
    [
        1,
        "南门人脸门禁",
        "人脸识别门禁",
        "海康威视",
        "DS-K1T671M",
        "FT-TF-S-01",
        "南门行人通道",
        None,
        None,
        "2023/11/8",
        108.7021,
        34.3012,
    ],
    [
        2,
        "3号楼烟感301",
        "烟感",
        "海曼",
        "HM-618PH-NB",
        "NB-SMK-TF-3-301",
        "3号楼301厨房",
        "3号楼",
        3,
        "2024年3月5日",
        None,
        None,
    ],
    [
        3,
        "北门道闸",
        "车牌识别道闸",
        "大华",
        "ITC237",
        "ITC-TF-N-01",
        "北门车行道",
        None,
        None,
        None,
        None,
        None,
    ],
    [
        4,
        "地下车库摄像机",
        "咖啡机",
        "宇视",
        "IPC-B2",
        "IPC-TF-B2-01",
        "地下车库",
        None,
        None,
        None,
        None,
        None,
    ],
    [5, "9号楼电梯", "电梯监测", "", "", "EL-TF-9-1", "9号楼1单元", "9号楼", None, None, None, None],
    [6, "东门摄像机", "摄像机", "", "", "有 空格", "东门", None, None, None, None, None],
    [7, "水表", "智能水表", "三川", "", "WM-TF-3-2-501", "", None, None, "2024-13-01", None, None],
]


def _upload(client, headers, world, data: bytes, name: str, **form):  # type: ignore[no-untyped-def]
    files = {"file": (name, data)}
    return client.post(
        "/api/v1/import/devices", headers=headers, files=files, data={"community": world.tianfu, **form}
    )


def test_import_xlsx_keeps_good_rows_and_explains_bad_ones(client, login, session, world) -> None:
    places.upsert_building(session, Principal.system(), community_code=world.tianfu, number="3")
    session.commit()
    headers = login("shequ")
    sheet = tabular.write_xlsx(HEADERS, ROWS, sheet_title="天府和苑设备台账")
    r = _upload(client, headers, world, sheet, "设备台账.xlsx")
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["created"] == 3
    assert [(x["row"], x["field"]) for x in report["rejected"]] == [
        (5, "kind"),
        (6, "building"),
        (7, "serial"),
        (8, "installed_on"),
    ]
    assert "咖啡机" in report["rejected"][0]["reason"]
    assert {s["serial"] for s in report["secrets"]} == {"FT-TF-S-01", "NB-SMK-TF-3-301", "ITC-TF-N-01"}
    devices = {d["serial"]: d for d in client.get("/api/v1/devices", headers=headers).json()}
    smoke = devices["NB-SMK-TF-3-301"]
    assert (smoke["kind"], smoke["floor"], smoke["installed_on"]) == ("smoke_sensor", 3, "2024-03-05")
    assert smoke["building_id"] is not None
    assert devices["FT-TF-S-01"]["lat"] == 34.3012

    again = _upload(client, headers, world, sheet, "设备台账.xlsx").json()
    assert (again["created"], again["updated"], again["unchanged"], again["secrets"]) == (0, 0, 3, [])


def test_import_csv_dry_run_and_updates(client, login, world) -> None:
    headers = login("shequ")
    csv = tabular.write_csv(
        ["设备编号", "设备类型", "安装地点", "状态"], [["GW-TF-01", "网关", "物业中心机房", "在用"]]
    )
    dry = _upload(client, headers, world, csv, "gw.csv", dry_run="true").json()
    assert dry["created"] == 1 and dry["dry_run"] and dry["secrets"] == []
    assert client.get("/api/v1/devices", headers=headers).json() == []
    assert _upload(client, headers, world, csv, "gw.csv").json()["created"] == 1
    moved = tabular.write_csv(
        ["设备编号", "设备类型", "安装地点", "状态"], [["GW-TF-01", "网关", "2号楼弱电间", "维修"]]
    )
    report = _upload(client, headers, world, moved, "gw.csv").json()
    assert report["updated"] == 1
    gw = client.get("/api/v1/devices", headers=headers).json()[0]
    assert (gw["location"], gw["state"]) == ("2号楼弱电间", "maintenance")


def test_import_refuses_other_communities_and_non_sheets(client, login, world) -> None:
    csv = tabular.write_csv(["序列号", "设备类型"], [["CAM-1", "摄像机"]])
    assert _upload(client, login("shequ2"), world, csv, "d.csv").status_code == 404
    bad = _upload(client, login("shequ"), world, b"%PDF-1.4 not a sheet", "d.pdf")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "file"
    assert _upload(client, login("jingwu"), world, csv, "d.csv").status_code == 403
    template = client.get("/api/v1/devices/import-template.xlsx", headers=login("shequ"))
    assert template.status_code == 200
    headers = next(openpyxl.load_workbook(io.BytesIO(template.content)).active.iter_rows(values_only=True))
    assert headers[:3] == ("设备名称", "设备类型", "厂商") and "序列号" in headers


def test_a_search_word_names_kinds_by_their_chinese_names_synonyms_or_codes() -> None:
    from linli.devices.vocab import kinds_named

    assert kinds_named("烟") == {"smoke_sensor"}
    assert kinds_named("门禁") == {"face_terminal", "card_reader"}
    assert kinds_named("表") == {"water_meter", "electricity_meter", "gas_meter"}
    assert kinds_named("METER") == {"water_meter", "electricity_meter", "gas_meter"}
    assert (
        kinds_named("sos") == {"sos_button"} and kinds_named("") == set() and kinds_named("12号楼") == set()
    )
    assert kinds_named("_") == set() and kinds_named("smoke_sensor") == {"smoke_sensor"}
