"""A site's street address: stored as typed, cleaned, bounded, and carried where the site goes."""

import pytest

from sitetwin.data.sites import ADDRESS_MAX, upsert_site
from sitetwin.data.store import open_store
from sitetwin.data.text import TextError


def test_a_site_keeps_its_chinese_street_address_and_an_update_without_one_keeps_it(tmp_path):
    with open_store(tmp_path / "s.duckdb") as store:
        upsert_site(store, "WH-JA-03", name="江岸区二七路综合楼项目", address=" 湖北省武汉市江岸区二七路66号 ")
        upsert_site(store, "WH-JA-03", district="Jiang'an")
        assert store.scalar("SELECT address FROM sites WHERE site_code = 'WH-JA-03'") == "湖北省武汉市江岸区二七路66号"


def test_an_address_with_a_line_break_or_over_the_limit_is_refused_naming_the_field_and_nothing_changes(tmp_path):
    with open_store(tmp_path / "s.duckdb") as store:
        upsert_site(store, "A", address="江岸区1号")
        for bad in ("江岸区\n2号", "路" * (ADDRESS_MAX + 1)):
            with pytest.raises(TextError, match="^address: "):
                upsert_site(store, "A", address=bad)
        assert store.scalar("SELECT address FROM sites WHERE site_code = 'A'") == "江岸区1号"


def test_a_site_address_travels_in_an_exchange_package(tmp_path):
    from sitetwin.data.exchange import export_sites, import_tables

    with open_store(tmp_path / "a.duckdb") as store:
        upsert_site(store, "A", name="甲", address="湖北省武汉市武昌区中南路99号")
        export_sites(store, tmp_path / "pkg", ["A"])
    with open_store(tmp_path / "b.duckdb") as store:
        import_tables(store, tmp_path / "pkg")
        assert store.scalar("SELECT address FROM sites WHERE site_code = 'A'") == "湖北省武汉市武昌区中南路99号"
