"""Every console page renders real data for a community worker, and nothing of another community."""

from __future__ import annotations

import pytest

from tests.builders import World
from tests.web.helpers import Console, Register


def _pages(reg: Register, world: World) -> list[tuple[str, list[str]]]:
    """(url, texts the page must show) for every console page."""
    return [
        ("/", ["概览", "天府和苑", "独居老人"]),
        ("/areas", ["天府和苑", "回迁安置社区"]),
        (f"/areas/{world.tianfu}", ["斗门街道", "3号楼", 'id="map"', "第一网格"]),
        (f"/areas/tree?code={world.tianfu}", ["第一网格", "第二网格"]),
        ("/people", ["张秀英", "李建国"]),
        ("/people?q=zxy", ["张秀英"]),
        (f"/people/{reg.person}", ["张秀英", "独居老人", "天府和苑3号楼2单元501室", "陕A12345"]),
        ("/buildings", ["天府和苑3号楼", "天府和苑5号楼"]),
        (f"/buildings/{reg.building}", ["天府和苑3号楼", "2单元", "5层", "501", "302"]),
        ("/houses", ["天府和苑3号楼2单元501室", "天府和苑3号楼1单元302室"]),
        (f"/houses/{reg.house}", ["张秀英", "李建国", "户主/产权人", "天府和苑便民超市", "89.5"]),
        ("/organisations", ["天府和苑便民超市", "139****5678"]),
        (f"/organisations/{reg.org}", ["天府和苑便民超市", "个体工商户", "天府和苑3号楼2单元501室"]),
        ("/vehicles", ["陕A12345", "B-101"]),
        (f"/vehicles/{reg.vehicle}", ["陕A12345", f'href="/people/{reg.person}"', "张秀英"]),
        ("/import", ["天府和苑", "人口导入模板"]),
    ]


def test_each_page_shows_real_data_to_a_community_worker(
    console: Console, register: Register, world: World
) -> None:
    console.login("shequ")
    for url, texts in _pages(register, world):
        page = console.get(url)
        assert page.status_code == 200, (url, page.text[:500])
        for text in texts:
            assert text in page.text, (url, text)
        for other in ("王幸福", "幸福里物业", "陕A54321"):
            assert other not in page.text, (url, other)


def test_masked_by_default(console: Console, register: Register) -> None:
    console.login("shequ")
    page = console.get(f"/people/{register.person}").text
    assert "138****8000" in page and "13800138000" not in page
    assert page.count("*" * 11) >= 1


@pytest.mark.parametrize("kind", ["people", "houses", "buildings", "organisations", "vehicles"])
def test_another_communitys_record_is_404(console: Console, register: Register, kind: str) -> None:
    console.login("shequ")
    other = {
        "people": register.other_person,
        "houses": register.other_house,
        "buildings": register.other_building,
        "organisations": register.other_org,
        "vehicles": register.other_vehicle,
    }[kind]
    page = console.get(f"/{kind}/{other}")
    assert page.status_code == 404
    assert "不在权限范围内" in page.text and 'data-testid="error"' in page.text
    for text in ("王幸福", "幸福里", "陕A54321"):
        assert text not in page.text


def test_another_community_area_is_404(console: Console, world: World) -> None:
    console.login("shequ")
    assert console.get(f"/areas/{world.xingfu}").status_code == 404
    assert console.get(f"/areas/{world.tianfu}").status_code == 200


def test_street_staff_sees_both_communities_of_their_street(console: Console, register: Register) -> None:
    console.login("jiedao")
    assert console.get(f"/people/{register.person}").status_code == 200
    assert console.get(f"/people/{register.other_person}").status_code == 404  # another street


def test_signed_out_is_sent_to_login(console: Console) -> None:
    page = console.get("/people", follow_redirects=False)
    assert page.status_code == 303 and page.headers["location"].startswith("/login")


def test_wrong_password_shows_the_form_again(console: Console) -> None:
    from tests.web.helpers import csrf_of

    form = console.get("/login")
    page = console.client.post(
        "/login", data={"username": "shequ", "password": "nope-nope", "csrf": csrf_of(form.text)}
    )
    assert page.status_code == 401 and "用户名或密码错误" in page.text


def test_resident_may_not_read_the_register(console: Console, register: Register) -> None:
    console.login("jumin")
    assert console.get("/people").status_code == 403
    assert console.get(f"/houses/{register.house}").status_code == 403


def test_area_tree_partial_for_htmx(console: Console, world: World) -> None:
    console.login("admin")
    part = console.get(f"/areas/tree?code={world.district}", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "沣东新城" in part.text and "<html" not in part.text
    whole = console.get("/areas")
    assert "西咸新区" in whole.text and "<html" in whole.text


def test_people_search_returns_rows_partial_for_htmx(console: Console, register: Register) -> None:
    console.login("shequ")
    part = console.get("/people?q=lj", headers={"HX-Request": "true"})
    assert part.status_code == 200 and "李建国" in part.text and "张秀英" not in part.text
    assert "<html" not in part.text


def test_export_people_xlsx(console: Console, register: Register) -> None:
    console.login("shequ")
    r = console.get("/export/people.xlsx")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert "filename*=UTF-8''%E5%AE%9E%E6%9C%89%E4%BA%BA%E5%8F%A3" in r.headers["content-disposition"]
    assert r.content[:2] == b"PK"
