"""Parquet export and import of store tables."""

from __future__ import annotations

import json

import pytest

from sitetwin.bim.load import load_model
from sitetwin.data.errors import StoreError
from sitetwin.data.exchange import export_tables, import_tables
from sitetwin.data.store import open_store


@pytest.fixture
def filled(tmp_path, shared_data):
    path = tmp_path / "src.duckdb"
    with open_store(path) as s:
        load_model(s, shared_data / "ifc/schependomlaan/root_design_parts/ROOT-staal.ifczip", site_code="NIJ")
    return path


def _dump(store, table):
    return store.rows(f'SELECT * EXCLUDE (loaded_at) FROM "{table}" ORDER BY ALL') if table == "models" else \
        store.rows(f'SELECT * FROM "{table}" ORDER BY ALL')


def test_export_then_import_gives_back_every_row(filled, tmp_path):
    out = tmp_path / "pq"
    with open_store(filled, read_only=True) as src:
        manifest = export_tables(src, out)
        originals = {t: _dump(src, t) for t in ("sites", "models", "elements", "storeys")}
    assert manifest["tables"]["elements"]["rows"] == 78
    with open_store(tmp_path / "dst.duckdb") as dst:
        report = import_tables(dst, out)
        assert report["elements"] == {"read": 78, "inserted": 78}
        for table, rows in originals.items():
            assert _dump(dst, table) == rows


def test_importing_the_same_package_twice_inserts_nothing_new(filled, tmp_path):
    out = tmp_path / "pq"
    with open_store(filled, read_only=True) as src:
        export_tables(src, out)
    with open_store(tmp_path / "dst.duckdb") as dst:
        import_tables(dst, out)
        again = import_tables(dst, out)
    assert all(v["inserted"] == 0 for v in again.values())


def test_a_package_with_a_damaged_file_is_refused_and_nothing_is_written(filled, tmp_path):
    out = tmp_path / "pq"
    with open_store(filled, read_only=True) as src:
        export_tables(src, out)
    data = (out / "elements.parquet").read_bytes()
    (out / "elements.parquet").write_bytes(data[: len(data) // 2])
    with open_store(tmp_path / "dst.duckdb") as dst:
        with pytest.raises(StoreError, match="elements.parquet.*checksum"):
            import_tables(dst, out)
        assert dst.scalar("SELECT count(*) FROM sites") == 0


def test_a_file_with_unknown_columns_is_refused_before_anything_is_written(filled, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "pq"
    with open_store(filled, read_only=True) as src:
        export_tables(src, out, ["sites", "models"])
    pq.write_table(pa.table({"site_code": ["X"], "colour": ["red"]}), out / "models.parquet")
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["tables"]["models"]["sha256"]
    (out / "manifest.json").write_text(json.dumps(manifest))
    with open_store(tmp_path / "dst.duckdb") as dst:
        with pytest.raises(StoreError, match="colour"):
            import_tables(dst, out)
        assert dst.scalar("SELECT count(*) FROM sites") == 0


def test_exporting_an_unknown_table_names_the_tables_there_are(filled, tmp_path):
    with open_store(filled, read_only=True) as src:
        with pytest.raises(StoreError, match="no table nonsense.*elements"):
            export_tables(src, tmp_path / "x", ["nonsense"])
