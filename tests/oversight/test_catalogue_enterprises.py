"""Exchange packages carry the enterprises their sites name, and only those."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sitetwin.data.enterprises import add_subcontractor, credit_check_char, set_site_enterprise, upsert_enterprise
from sitetwin.data.exchange import MANIFEST
from sitetwin.data.files import file_sha256
from sitetwin.oversight.catalogue import export_package, import_package
from sitetwin.oversight.errors import OversightError
from sitetwin.oversight.scope import Scope

SYSTEM = Scope.system()


def credit(first17: str) -> str:
    return first17 + credit_check_char(first17)


@pytest.fixture
def firms(sites_store):
    s = sites_store
    upsert_enterprise(s, "WHCJ", name="中建三局集团有限公司", credit_code=credit("91420000177572435"))
    upsert_enterprise(s, "CURTAIN", name="某幕墙工程有限公司", credit_code=credit("91420100MA4K00001"),
                      kind="specialty_contractor")
    upsert_enterprise(s, "WCONLY", name="武昌某建设有限公司", credit_code=credit("91420106MA4K00002"))
    set_site_enterprise(s, "WH-JA-1", "WHCJ")
    add_subcontractor(s, "WH-JA-1", "CURTAIN", scope_of_work="幕墙")
    set_site_enterprise(s, "WH-WC-1", "WCONLY")
    return s


def test_a_package_carries_the_construction_enterprise_and_subcontractors_of_its_sites(firms, tmp_path,
                                                                                      store_factory):
    manifest = export_package(firms, SYSTEM, tmp_path / "pkg", sites=["WH-JA-1", "WH-JA-2"])
    assert manifest["tables"]["enterprises"]["rows"] == 2            # WHCJ and CURTAIN, not Wuchang's WCONLY
    district = store_factory()
    report = import_package(district, Scope.for_account("dora", "district_regulator", district="Jiang'an",
                                                        city="Wuhan"), tmp_path / "pkg")
    assert report["tables"]["enterprises"]["inserted"] == 2
    assert district.rows("SELECT enterprise_code, name FROM enterprises ORDER BY 1") == [
        {"enterprise_code": "CURTAIN", "name": "某幕墙工程有限公司"},
        {"enterprise_code": "WHCJ", "name": "中建三局集团有限公司"}]
    assert district.scalar("SELECT enterprise_code FROM sites WHERE site_code = 'WH-JA-1'") == "WHCJ"


def test_a_package_cannot_smuggle_in_enterprises_none_of_its_sites_name(firms, tmp_path, store_factory, snapshot):
    out = tmp_path / "pkg"
    export_package(firms, SYSTEM, out, sites=["WH-JA-2"])             # a site without enterprises
    # add a stray enterprise to the package and mend the checksum, as a forger would
    stray = pa.table({"enterprise_code": ["WCONLY"], "name": ["冒名公司"], "credit_code": [credit("91420106MA4K00002")],
                      "kind": ["general_contractor"], "created_at": pa.array([None], pa.timestamp("us"))})
    pq.write_table(stray, out / "enterprises.parquet")
    manifest = json.loads((out / MANIFEST).read_text())
    manifest["tables"]["enterprises"] = {"file": "enterprises.parquet", "rows": 1,
                                         "sha256": file_sha256(out / "enterprises.parquet")}
    (out / MANIFEST).write_text(json.dumps(manifest))
    district = store_factory()
    before = snapshot(district)
    with pytest.raises(OversightError, match="enterprise_code WCONLY is named by none of the package's sites"):
        import_package(district, SYSTEM, out)
    assert snapshot(district) == before
