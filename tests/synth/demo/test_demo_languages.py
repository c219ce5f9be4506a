"""The demo in both languages: Chinese site names as Wuhan registers them, regulators reading Chinese."""

from __future__ import annotations

import re

from sitetwin.data.i18n import LANGUAGES as SUPPORTED
from sitetwin.synth.demo.model import DEMO_SITE_NAME
from sitetwin.synth.demo.oversight import ACCOUNTS, LANGUAGES, SITES

CJK = re.compile(r"[\u4e00-\u9fff]")
DISTRICT_ZH = {"Jiang'an": "江岸区", "Wuchang": "武昌区"}


def test_every_demo_site_has_a_chinese_name_naming_its_district_and_an_ascii_code():
    assert DEMO_SITE_NAME.startswith("江岸区")
    for code, (name, district, project, contractor, *_rest) in SITES.items():
        assert code.isascii() and re.fullmatch(r"WH-(JA|WC)-\d\d", code)
        assert name.startswith(DISTRICT_ZH[district]) and name.endswith("项目"), name
        assert CJK.search(project) and contractor.endswith("有限公司")


def test_the_regulators_read_chinese_and_everyone_else_english():
    regulators = {u for u, (role, *_rest) in ACCOUNTS.items() if role in ("city_regulator", "district_regulator")}
    assert regulators == {"city.regulator", "jiangan.regulator", "wuchang.regulator"}
    assert {u: LANGUAGES.get(u, "en") for u in ACCOUNTS} == {u: "zh-CN" if u in regulators else "en" for u in ACCOUNTS}
    assert set(LANGUAGES.values()) <= set(SUPPORTED)
