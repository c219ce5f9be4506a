"""The store: migrations, transactions, read-only access, locks, bad files."""

from __future__ import annotations

import shutil
import subprocess
import sys
import textwrap

import pytest

from sitetwin.data.errors import StoreError
from sitetwin.data.store import cache_dir_for, copy_store, migrations, open_store


def test_migrations_are_numbered_without_gaps_in_meaning_and_apply_in_order(store):
    applied = store.rows("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r["version"] for r in applied] == [m.version for m in migrations()]
    assert applied[0] == {"version": 1, "name": "init"}


def test_reopening_a_store_applies_nothing_twice(tmp_path):
    path = tmp_path / "t.duckdb"
    with open_store(path) as s:
        first = s.scalar("SELECT count(*) FROM schema_migrations")
    with open_store(path) as s:
        assert s.scalar("SELECT count(*) FROM schema_migrations") == first


def test_the_foundation_tables_exist(store):
    assert {"sites", "models", "elements", "storeys", "schedules", "tasks", "task_elements"} <= set(store.tables())


def test_a_failed_transaction_leaves_the_store_as_it_was(store):
    store.execute("INSERT INTO sites (site_code, name) VALUES ('A', 'a')")
    with pytest.raises(RuntimeError):
        with store.transaction():
            store.execute("INSERT INTO sites (site_code, name) VALUES ('B', 'b')")
            raise RuntimeError("boom")
    assert [r["site_code"] for r in store.rows("SELECT site_code FROM sites")] == ["A"]


def test_values_are_bound_not_formatted(store):
    hostile = "x'); DROP TABLE sites; --"
    store.execute("INSERT INTO sites (site_code, name) VALUES (?, ?)", ["S", hostile])
    assert store.scalar("SELECT name FROM sites WHERE site_code = ?", ["S"]) == hostile
    assert "sites" in store.tables()


def test_insert_frame_refuses_names_that_are_not_identifiers(store):
    import pandas as pd

    with pytest.raises(StoreError, match="not a table name"):
        store.insert_frame("sites; DROP TABLE x", pd.DataFrame({"a": [1]}))
    with pytest.raises(StoreError, match="not a column name"):
        store.insert_frame("sites", pd.DataFrame({"name); --": [1]}))


def test_a_read_only_store_refuses_writes(tmp_path):
    path = tmp_path / "t.duckdb"
    open_store(path).close()
    with open_store(path, read_only=True) as s:
        with pytest.raises(StoreError, match="read-only"):
            with s.transaction():
                pass


def test_opening_a_missing_store_read_only_says_how_to_create_it(tmp_path):
    with pytest.raises(StoreError, match="sitetwin init"):
        open_store(tmp_path / "none.duckdb", read_only=True)


def test_a_file_that_is_not_a_store_is_refused(tmp_path):
    bad = tmp_path / "bad.duckdb"
    bad.write_text("this is not a database")
    with pytest.raises(StoreError, match="bad.duckdb"):
        open_store(bad)


def test_a_folder_is_not_a_store(tmp_path):
    with pytest.raises(StoreError, match="is a folder"):
        open_store(tmp_path)


def test_a_reader_waits_for_a_writer_in_another_process_and_then_gets_in(tmp_path):
    path = tmp_path / "t.duckdb"
    open_store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep(1.5)
        con.close()
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with open_store(path, read_only=True, lock_timeout_s=20) as s:
            assert s.schema_version() >= 1
    finally:
        holder.wait(timeout=20)


def test_a_writer_that_never_lets_go_gives_a_clear_error(tmp_path):
    path = tmp_path / "t.duckdb"
    open_store(path).close()
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import time, duckdb
        con = duckdb.connect({str(path)!r})
        print("locked", flush=True)
        time.sleep(30)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(StoreError, match="another process is writing"):
            open_store(path, lock_timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()


def test_a_copied_store_carries_its_rows_and_its_cache_and_leaves_the_original_alone(tmp_path):
    src = tmp_path / "a" / "site.duckdb"
    src.parent.mkdir()
    with open_store(src) as store:
        store.execute("INSERT INTO sites (site_code, name) VALUES (?, ?)", ["S1", "one"])
    (cache_dir_for(src) / "models").mkdir(parents=True)
    (cache_dir_for(src) / "models" / "m.npz").write_bytes(b"geometry")
    dst = copy_store(src, tmp_path / "b.duckdb")
    with open_store(dst) as store:
        store.execute("INSERT INTO sites (site_code, name) VALUES (?, ?)", ["S2", "two"])
    assert (cache_dir_for(dst) / "models" / "m.npz").read_bytes() == b"geometry"
    with open_store(src, read_only=True) as store:
        assert store.scalar("SELECT string_agg(site_code, ',') FROM sites") == "S1"
    # a store without a cache is copied alone
    shutil.rmtree(cache_dir_for(dst))
    bare = copy_store(dst, tmp_path / "c.duckdb")
    assert bare.exists() and not cache_dir_for(bare).exists()
    with open_store(bare, read_only=True) as store:
        assert store.scalar("SELECT count(*) FROM sites") == 2


def test_where_in_binds_each_value_once_and_says_true_for_none_and_false_for_nothing(store):
    from sitetwin.data.store import placeholders, where_in

    assert placeholders(["a", "b", "c"]) == "?, ?, ?"
    assert where_in("site_code", ["B", "A", "B"]) == ("site_code IN (?, ?)", ["B", "A"])
    assert where_in("site_code", None) == ("true", [])
    assert where_in("site_code", []) == ("false", [])
    store.execute("CREATE TABLE t (site_code VARCHAR)")
    store.execute("INSERT INTO t VALUES ('A'), ('B'), ('C')")
    for values, expected in ((["A", "C", "A"], 2), (None, 3), ([], 0)):
        where, params = where_in("site_code", values)
        assert store.scalar(f"SELECT count(*) FROM t WHERE {where}", params) == expected


def test_a_duckdb_file_that_is_not_a_sitetwin_store_is_named_as_such(tmp_path):
    import duckdb

    from sitetwin.data.errors import StoreError

    path = tmp_path / "other.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE t (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match=r"other\.duckdb: not a sitetwin store \(no schema_migrations table\)"):
        open_store(path, read_only=True, create=False)
