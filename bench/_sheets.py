"""Deterministic register sheets for benchmarks: valid IDs, phones and addresses, as offices keep them."""

from __future__ import annotations

import io
import random
from datetime import date, timedelta

import openpyxl

from linli.registry.validation import gb11643_check_digit

HEADERS = [
    "序号",
    "姓名",
    "公民身份号码",
    "联系电话",
    "楼号",
    "单元",
    "门牌号",
    "与户主关系",
    "户籍地",
    "民族",
]
SURNAMES = (
    "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈"
)
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国红梅兰凤玉珍文辉鹏飞宇浩然子轩梓涵欣怡"


def people_rows(n: int, *, seed: int = 7) -> list[list[object]]:
    """n people in households of 2-4, in 6-unit buildings, all with valid fictitious IDs."""
    rng = random.Random(seed)
    rows: list[list[object]] = []
    used: set[str] = set()
    house = 0
    while len(rows) < n:
        house += 1
        building, rest = divmod(house - 1, 6 * 18 * 2)
        unit, rest = divmod(rest, 18 * 2)
        floor, door = divmod(rest, 2)
        room = f"{floor + 1}{door + 1:02d}"
        for member in range(rng.randint(2, 4)):
            if len(rows) >= n:
                break
            while True:
                born = date(1930, 1, 1) + timedelta(days=rng.randrange(33000))
                order = rng.randrange(1000)
                first17 = f"610402{born:%Y%m%d}{order:03d}"
                number = first17 + gb11643_check_digit(first17)
                if number not in used:
                    used.add(number)
                    break
            name = rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.randint(1, 2)))
            phone = f"1{rng.choice('3456789')}{rng.randrange(10**9):09d}"
            relation = "户主" if member == 0 else rng.choice(["家庭成员", "配偶", "子女"])
            rows.append(
                [
                    len(rows) + 1,
                    name,
                    number,
                    phone,
                    building + 1,
                    unit + 1,
                    room,
                    relation,
                    "陕西省咸阳市秦都区",
                    "汉族",
                ]
            )
    return rows


def xlsx(rows: list[list[object]]) -> bytes:
    """The rows as an .xlsx with a title row and the header, the way offices keep them."""
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("人口")
    ws.append(["天府和苑社区实有人口登记表"])
    ws.append(HEADERS)
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
