"""Word pools for synthetic residents: surnames, given names by generation, home regions, shop names."""

from __future__ import annotations


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# Common surnames with rough weights (per mille); 马 and 雷/党/樊 a little higher, as in Guanzhong.
_SURNAME_WEIGHTS = _words(
    "王71 李70 张66 刘54 陈40 杨33 赵24 黄18 周19 吴17 徐15 孙15 马16 朱12 胡12 郭13 何10 高12 林8 罗9 "
    "郑8 梁8 谢7 宋8 唐7 许7 韩8 冯8 邓6 曹7 彭5 肖5 田7 董6 袁5 潘4 于5 蒋4 蔡4 余4 杜6 叶3 程5 苏5 "
    "魏6 吕5 丁4 任6 沈3 姚4 卢4 姜4 崔4 钟3 谭3 陆3 汪3 范4 金3 石4 廖2 贾5 夏3 付4 方3 白5 邹2 孟4 "
    "熊2 秦4 邱2 江3 尹3 薛5 闫5 段4 雷5 侯4 龙2 史4 陶2 贺4 顾2 毛3 郝4 龚2 邵3 万2 严3 武4 戴2 孔2 "
    "党4 樊4 寇2 屈2 拓1 权2"
)
SURNAMES: tuple[str, ...] = tuple(w[0] for w in _SURNAME_WEIGHTS)
SURNAME_WEIGHTS: tuple[int, ...] = tuple(int(w[1:]) for w in _SURNAME_WEIGHTS)

# Given names by birth cohort and sex: born before 1965, 1965-1989, from 1990.
GIVEN_NAMES: dict[tuple[str, str], tuple[str, ...]] = {
    ("old", "M"): _words(
        "建国 建军 国强 志强 德明 振华 卫东 永福 玉柱 宝山 满仓 铁柱 春生 秋生 德胜 树林 根生 立新 学文 新民 "
        "建华 卫国 长顺 有福 金锁 占奎 发展 全胜 怀仁 宏伟 忠 林 明 福 强 勇 军 平 海 山 文 斌 俊 亮"
    ),
    ("old", "F"): _words(
        "秀英 桂英 秀兰 玉兰 桂兰 淑珍 凤英 玉梅 秀珍 桂芳 翠花 春梅 素芬 玉珍 冬梅 淑英 彩霞 丽华 兰英 凤兰 "
        "金凤 月娥 巧云 改霞 改琴 引弟 粉霞 秀芳 玉芳 菊香 芳 霞 英 兰 梅 珍 琴 娥"
    ),
    ("mid", "M"): _words(
        "伟 磊 军 勇 涛 斌 鹏 杰 强 超 刚 辉 明 亮 浩 建伟 海涛 晓东 志刚 永强 小龙 文博 俊杰 国庆 海波 东升 "
        "少华 小军 卫华 向阳 朝阳 亚军 立军 晓峰 振宇 博 红军 建平 旭 宁 锋 毅"
    ),
    ("mid", "F"): _words(
        "丽 娟 敏 静 艳 芳 燕 霞 玲 婷 丽娟 晓燕 艳红 小红 海燕 丽萍 秀梅 红梅 雪梅 晓丽 玉洁 婷婷 莉 倩 慧 "
        "瑞 晶 欢 蕾 亚楠 亚萍 晓娟 小莉 娜 春燕 丹 妮 颖"
    ),
    ("young", "M"): _words(
        "浩然 子轩 宇轩 梓豪 俊熙 浩宇 一鸣 博文 宇航 明轩 锦程 天佑 睿 晨 轩 航 昊 嘉豪 思源 逸凡 皓轩 梓睿 "
        "家乐 泽宇 奕辰 沐宸 铭泽 瑞霖 子墨 宇 哲 凯 鑫 豪 帅 阳"
    ),
    ("young", "F"): _words(
        "欣怡 梓涵 诗涵 雨涵 子萱 可馨 紫萱 思彤 语嫣 一诺 梦瑶 佳怡 雨桐 若汐 欣妍 诗琪 心怡 佳琪 梓萱 安琪 "
        "悦 萱 琳 彤 雪 瑶 怡然 雅婷 晨曦 沐晴 佳 璐 蕊 薇"
    ),
}


def cohort(birth_year: int) -> str:
    """The given-name cohort of a birth year."""
    return "old" if birth_year < 1965 else "mid" if birth_year < 1990 else "young"


# Region codes (GB/T 2260) used in ID numbers, with the hukou place they stand for.
REGIONS: dict[str, str] = {
    "610402": "陕西省咸阳市秦都区",
    "610404": "陕西省咸阳市渭城区",
    "610423": "陕西省咸阳市泾阳县",
    "610422": "陕西省咸阳市三原县",
    "610424": "陕西省咸阳市乾县",
    "610425": "陕西省咸阳市礼泉县",
    "610481": "陕西省咸阳市兴平市",
    "610104": "陕西省西安市莲湖区",
    "610112": "陕西省西安市未央区",
    "610116": "陕西省西安市长安区",
    "610117": "陕西省西安市高陵区",
    "610118": "陕西省西安市鄠邑区",
    "610302": "陕西省宝鸡市渭滨区",
    "610502": "陕西省渭南市临渭区",
    "610602": "陕西省延安市宝塔区",
    "610702": "陕西省汉中市汉台区",
    "610802": "陕西省榆林市榆阳区",
    "611101": "陕西省西咸新区空港新城",
    "611102": "陕西省西咸新区沣东新城",
    "611103": "陕西省西咸新区秦汉新城",
    "611104": "陕西省西咸新区沣西新城",
    "611105": "陕西省西咸新区泾河新城",
    "410102": "河南省郑州市中原区",
    "411302": "河南省南阳市宛城区",
    "620102": "甘肃省兰州市城关区",
    "621102": "甘肃省定西市安定区",
    "140105": "山西省太原市小店区",
    "510104": "四川省成都市锦江区",
    "640104": "宁夏回族自治区银川市兴庆区",
    "500101": "重庆市万州区",
    "130102": "河北省石家庄市长安区",
    "340102": "安徽省合肥市瑶海区",
}

# Where the villagers resettled in each new city came from (the villages the new city was built on).
LOCAL_REGIONS: dict[str, tuple[str, ...]] = {
    "611101": ("610404", "610404", "610423"),
    "611102": ("610402", "610116", "610112"),
    "611103": ("610404", "610404", "610402"),
    "611104": ("610402", "610402", "610118"),
    "611105": ("610423", "610423", "610422", "610117"),
}
# Where newcomers (buyers, tenants) come from: the rest of Shaanxi mostly, then neighbouring provinces.
MIGRANT_REGIONS: tuple[str, ...] = (
    "610402",
    "610404",
    "610104",
    "610112",
    "610116",
    "610424",
    "610425",
    "610481",
    "610302",
    "610502",
    "610602",
    "610702",
    "610802",
    "610423",
    "610402",
    "610104",
    "410102",
    "411302",
    "620102",
    "621102",
    "140105",
    "510104",
    "640104",
    "500101",
    "130102",
    "340102",
)
# Share of 回族 among people from a region (the rest are 汉族, with a few other minorities).
HUI_SHARE: dict[str, float] = {"610104": 0.12, "640104": 0.35, "620102": 0.10, "621102": 0.06}

MOBILE_PREFIXES: tuple[str, ...] = _words(
    "130 131 132 133 134 135 136 137 138 139 150 151 152 153 155 156 157 158 159 166 173 176 177 178 "
    "180 181 182 183 184 185 186 187 188 189 191 195 198 199"
)

PLATE_LETTERS = "ABCDEFGHJKLMNPQRSTUVWXYZ"
COLOURS = ("白色", "白色", "黑色", "黑色", "银色", "灰色", "红色", "蓝色", "棕色")

SHOP_KINDS = _words(
    "便利店 超市 理发店 药房 面馆 水果店 早餐店 五金店 干洗店 快递驿站 烟酒店 粮油店 肉夹馍店 凉皮店 "
    "家电维修部 母婴店 诊所 茶叶店 眼镜店 烧烤店"
)
ENTERPRISE_WORDS = _words(
    "华睿 秦川 丰泽 汉唐 渭水 长安 沣润 锦程 泰和 宏远 恒信 博远 嘉禾 天成 金石 瑞丰 鼎盛 兴业 永达 众诚"
)
ENTERPRISE_TRADES = _words(
    "科技 商贸 建筑工程 信息技术 餐饮管理 物流 文化传媒 家政服务 装饰工程 电子商务 农业发展 健康管理"
)
SOCIAL_ORGS = _words("社区养老服务站 居家养老服务中心 社区志愿者协会 四点半课堂服务中心 老年人日间照料中心")
