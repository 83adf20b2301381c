"""The demo programme: a typical Chinese retail chain with a till (POS) and a web shop."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from random import Random
from typing import Final

TIERS: Final = [
    # rank, code, name
    (0, "member", "普通会员"),
    (1, "silver", "银卡"),
    (2, "gold", "金卡"),
    (3, "diamond", "钻石"),
]

_SURNAMES: Final = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高"
_GIVEN: Final = [
    "伟",
    "芳",
    "娜",
    "敏",
    "静",
    "丽",
    "强",
    "磊",
    "洋",
    "艳",
    "勇",
    "军",
    "杰",
    "娟",
    "涛",
    "明",
    "超",
    "秀英",
    "桂英",
    "建华",
]
_MOBILE_PREFIXES: Final = ["138", "139", "186", "135", "158", "177", "150", "189"]


@dataclass(frozen=True)
class DemoPerson:
    name: str
    phone: str
    email: str | None
    birthday: date
    channel: str
    external_ids: dict[str, str]
    marketing_consent: bool


def demo_members(count: int = 36, seed: int = 2026) -> list[DemoPerson]:
    """Deterministic people, so every demo looks the same; phones are valid-looking CN mobile numbers."""
    rng = Random(seed)  # noqa: S311 - demo data, not secrets
    people: list[DemoPerson] = []
    for n in range(count):
        name = rng.choice(_SURNAMES) + rng.choice(_GIVEN)
        phone = rng.choice(_MOBILE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        birthday = date(rng.randrange(1960, 2006), rng.randrange(1, 13), rng.randrange(1, 29))
        online = n % 3 == 0
        external_ids = {"pos": f"POS-{100001 + n}"}
        if online or n % 4 == 0:
            external_ids["webshop"] = f"WEB-{500001 + n * 7}"
        people.append(
            DemoPerson(
                name=name,
                phone=phone,
                email=f"demo.member{n + 1:02d}@example.cn" if online or n % 2 == 0 else None,
                birthday=birthday,
                channel="online" if online else "store",
                external_ids=external_ids,
                marketing_consent=n % 5 != 0,
            )
        )
    return people
