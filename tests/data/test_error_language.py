"""A bad exchange package, enterprise file, store path or lake is refused in the reader's language, naming
the same file, row and values in English (the default, and what is stored) and in Chinese."""

from __future__ import annotations

import json

import pytest

from sitetwin.data.enterprises import EnterpriseError, import_enterprises, upsert_enterprise
from sitetwin.data.errors import SitetwinError, StoreError, message_text
from sitetwin.data.exchange import MANIFEST, export_sites, import_tables
from sitetwin.data.i18n import use_language
from sitetwin.data.lake import LakeError, open_lake
from sitetwin.data.sites import upsert_site
from sitetwin.data.store import DEFAULT_DB, open_store
from sitetwin.data.text import TextError, clean_text

CREDIT = "91350100M000100Y43"            # GB 32100-2015's own example


def _refusal(call, cls=SitetwinError) -> SitetwinError:
    with pytest.raises(cls) as info:
        call()
    return info.value


@pytest.fixture
def package(tmp_path):
    """An exchange package of one site and its construction enterprise."""
    out = tmp_path / "package"
    with open_store(":memory:") as src:
        upsert_site(src, "WH-01", name="Wuhan tower", district="Jiang'an", city="Wuhan")
        upsert_enterprise(src, "E1", name="Hubei Construction", credit_code=CREDIT)
        src.execute("UPDATE sites SET enterprise_code = 'E1' WHERE site_code = 'WH-01'")
        export_sites(src, out, ["WH-01"])
    return out


def test_a_damaged_package_file_is_refused_in_english_and_in_chinese(package, store):
    damaged = package / "sites.parquet"
    damaged.write_bytes(damaged.read_bytes() + b"\0")
    exc = _refusal(lambda: import_tables(store, package), StoreError)
    assert str(exc) == f"{damaged}: contents differ from the manifest's checksum; the package is damaged"
    with use_language("zh-CN"):
        assert str(exc) == f"{damaged}：内容与清单中的校验和不一致；数据包已损坏"
        assert message_text(exc) == f"{damaged}: contents differ from the manifest's checksum; the package is damaged"
    assert store.scalar("SELECT count(*) FROM sites") == 0


def test_a_package_from_a_newer_schema_names_both_versions_in_chinese(package, store):
    manifest = json.loads((package / MANIFEST).read_text(encoding="utf-8"))
    manifest["schema_version"] = 9999
    (package / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
    have = store.schema_version()
    exc = _refusal(lambda: import_tables(store, package), StoreError)
    assert str(exc) == (f"{package}: exported from a newer schema (version 9999) than :memory: has ({have}); "
                        "upgrade sitetwin first")
    with use_language("zh-CN"):
        assert str(exc) == f"{package}：导出时的结构版本（9999）高于 :memory: 的版本（{have}）；请先升级 sitetwin"


def test_a_mistyped_credit_code_names_file_row_and_field_in_both_languages(store, tmp_path):
    path = tmp_path / "enterprises.csv"
    path.write_text("enterprise_code,name,credit_code,kind\nE1,Hubei Construction,91350100M000100Y44,"
                    "general_contractor\n", encoding="utf-8")
    exc = _refusal(lambda: import_enterprises(store, path), EnterpriseError)
    assert str(exc) == (f"{path}: row 1: credit_code: '91350100M000100Y44': check character is '4', expected '3' "
                        "(GB 32100-2015); the code is mistyped")
    with use_language("zh-CN"):
        assert str(exc) == (f"{path}：第 1 行：credit_code：'91350100M000100Y44'：校验码为 '4'，应为 '3'"
                            "（GB 32100-2015）；代码有误，请核对")
    assert store.scalar("SELECT count(*) FROM enterprises") == 0


def test_a_folder_given_as_the_store_is_refused_in_chinese(tmp_path):
    exc = _refusal(lambda: open_store(tmp_path), StoreError)
    assert str(exc) == f"{tmp_path}: is a folder, not a store file; pass a file path such as {tmp_path / DEFAULT_DB}"
    with use_language("zh-CN"):
        assert str(exc) == f"{tmp_path}：是文件夹，不是数据库文件；请给出文件路径，例如 {tmp_path / DEFAULT_DB}"


def test_a_folder_without_a_lake_says_how_to_make_one_in_chinese(tmp_path):
    exc = _refusal(lambda: open_lake(str(tmp_path)), LakeError)
    assert str(exc) == (f"lake {tmp_path}: no sitetwin lake there (no _sitetwin_lake.json); make one with "
                        f"`sitetwin lake publish --db DB --lake {tmp_path}`")
    with use_language("zh-CN"):
        assert str(exc) == (f"数据湖 {tmp_path}：此处没有 sitetwin 数据湖（没有 _sitetwin_lake.json）；请用 "
                            f"`sitetwin lake publish --db DB --lake {tmp_path}` 创建")


def test_a_control_character_in_typed_text_is_refused_with_its_code_and_position_in_chinese():
    exc = _refusal(lambda: clean_text("ab\x07c", "title"), TextError)
    assert str(exc) == "title: control character U+0007 at position 3 is not allowed in text"
    with use_language("zh-CN"):
        assert str(exc) == "title：第 3 个字符为控制字符 U+0007，文本中不允许出现"
