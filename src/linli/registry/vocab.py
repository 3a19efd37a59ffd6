"""Controlled vocabularies of the register, with the Chinese words staff use for each value."""

from __future__ import annotations

from linli.core.errors import Invalid

# code -> (中文, English). The Chinese label and common synonyms are accepted on input.
HOUSE_USE = {
    "residence": ("住宅", "Residence"),
    "shop": ("商铺", "Shop"),
    "office": ("办公", "Office"),
    "vacant": ("空置", "Vacant"),
}
OWNERSHIP = {
    "resettlement": ("回迁安置", "Resettlement"),
    "commercial": ("商品房", "Commercial"),
    "rental": ("公租/租赁", "Rental"),
}
OCCUPANCY = {
    "owner_occupied": ("自住", "Owner-occupied"),
    "rented": ("出租", "Rented"),
    "vacant": ("空置", "Vacant"),
    "other": ("其他", "Other"),
}
RELATION = {
    "owner": ("户主/产权人", "Owner"),
    "family": ("家庭成员", "Family member"),
    "tenant": ("租户", "Tenant"),
    "resettled": ("安置户成员", "Resettled household member"),
}
ID_TYPE = {
    "resident_id": ("居民身份证", "Resident ID card"),
    "passport": ("护照", "Passport"),
    "hmt_permit": ("港澳台通行证", "HK/Macau/Taiwan permit"),
    "hmt_residence": ("港澳台居住证", "HK/Macau/Taiwan residence permit"),
}
CARE_TAGS = {
    "elderly_alone": ("独居老人", "Elderly living alone"),
    "elderly": ("高龄老人", "Elderly (80+)"),
    "disability": ("残疾人", "Disability"),
    "low_income": ("低保", "Low income (dibao)"),
    "veteran": ("退役军人", "Veteran"),
    "key_care": ("重点关爱", "Key care"),
    "left_behind_minor": ("留守儿童", "Minor left behind"),
    "special_hardship": ("特困", "Special hardship"),
}
ORG_TYPE = {
    "enterprise": ("企业", "Enterprise"),
    "shop": ("个体工商户", "Sole trader"),
    "government": ("机关事业单位", "Public body"),
    "social": ("社会组织", "Social organisation"),
    "property": ("物业公司", "Property company"),
}
VEHICLE_TYPE = {
    "car": ("小型汽车", "Car"),
    "truck": ("货车", "Truck"),
    "motorcycle": ("摩托车", "Motorcycle"),
    "ebike": ("电动自行车", "E-bike"),
    "bus": ("客车", "Bus"),
}
SEX = {"M": ("男", "Male"), "F": ("女", "Female")}

_SYNONYMS: dict[str, str] = {
    "房主": "owner",
    "户主": "owner",
    "产权人": "owner",
    "业主": "owner",
    "家属": "family",
    "家庭成员": "family",
    "子女": "family",
    "配偶": "family",
    "父母": "family",
    "租客": "tenant",
    "租户": "tenant",
    "承租人": "tenant",
    "安置户": "resettled",
    "回迁户": "resettled",
    "身份证": "resident_id",
    "居民身份证": "resident_id",
    "护照": "passport",
    "港澳通行证": "hmt_permit",
    "台胞证": "hmt_permit",
    "通行证": "hmt_permit",
    "居住证": "hmt_residence",
    "独居": "elderly_alone",
    "独居老人": "elderly_alone",
    "空巢老人": "elderly_alone",
    "残疾": "disability",
    "低保户": "low_income",
    "军人": "veteran",
    "退役": "veteran",
    "留守": "left_behind_minor",
    "自住": "owner_occupied",
    "出租": "rented",
    "闲置": "vacant",
    "住宅": "residence",
    "商铺": "shop",
    "门面": "shop",
    "办公": "office",
    "回迁": "resettlement",
    "安置房": "resettlement",
    "商品房": "commercial",
    "租赁": "rental",
    "男": "M",
    "女": "F",
    "男性": "M",
    "女性": "F",
}


def label(vocab: dict[str, tuple[str, str]], code: str | None, lang: str = "zh") -> str:
    """The display label of a code in lang ('' for None, the code itself when unknown)."""
    if not code:
        return ""
    pair = vocab.get(code)
    return (pair[0] if lang == "zh" else pair[1]) if pair else code


def to_code(vocab: dict[str, tuple[str, str]], text: str | None, *, field: str) -> str | None:
    """Read a value typed as a code, a Chinese or English label or a common synonym; Invalid otherwise."""
    if text is None or not str(text).strip():
        return None
    value = str(text).strip()
    if value in vocab:
        return value
    lowered = value.lower()
    for code, (zh, en) in vocab.items():
        if value == zh or lowered == en.lower() or value in zh.split("/"):
            return code
    synonym = _SYNONYMS.get(value)
    if synonym in vocab:
        return synonym
    allowed = "、".join(zh for zh, _ in vocab.values())
    raise Invalid(f"无法识别的取值“{value}”，可选：{allowed}", field=field)
