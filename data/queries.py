"""Ad-hoc read-only queries (``sitetwin sql``), and what ``data`` publishes about sites and enterprises."""

from __future__ import annotations

from typing import Any

from sitetwin.data.errors import StoreError
from sitetwin.data.i18n import N_
from sitetwin.data.store import Store


def read_only_query(store: Store, query: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Run one statement on a read-only store with file access switched off.

    A read-only DuckDB connection still lets ``COPY ... TO`` or ``ATTACH`` reach the file
    system; turning external access off keeps ``sitetwin sql`` a pure reader.
    """
    if not store.read_only:
        raise StoreError(N_("read_only_query needs a store opened read-only"))
    store.execute("SET enable_external_access = false")
    try:
        cur = store.con.execute(query)
    except Exception as exc:
        raise StoreError(N_("query failed: {reason}"), reason=str(exc).splitlines()[0]) from None
    if cur.description is None:
        return [], []
    return [d[0] for d in cur.description], cur.fetchall()


# --------------------------------------------------------------------------------------
# sites and enterprises (``data.enterprises`` writes them)

def site_time_zone(store: Store, site_code: str) -> str:
    """The IANA time zone of a site (``sites.time_zone``); Asia/Shanghai when the site is unknown
    or has none set."""
    from sitetwin.data.sites import DEFAULT_TIME_ZONE

    value = store.scalar("SELECT time_zone FROM sites WHERE site_code = ?", [site_code])
    return value or DEFAULT_TIME_ZONE


def enterprises(store: Store, codes=None):
    """Enterprises (all, or those of ``codes``): DataFrame enterprise_code, name, credit_code, kind,
    sites (how many sites name it their construction enterprise), ordered by code."""
    from sitetwin.data.store import where_in

    where, params = where_in("e.enterprise_code", codes)
    return store.df("SELECT e.enterprise_code, e.name, e.credit_code, e.kind, "
                    "(SELECT count(*) FROM sites s WHERE s.enterprise_code = e.enterprise_code) AS sites "
                    f"FROM enterprises e WHERE {where} ORDER BY e.enterprise_code", params)


def enterprise(store: Store, enterprise_code: str) -> dict | None:
    """One enterprise's row (enterprise_code, name, credit_code, kind, created_at), or None."""
    return store.one("SELECT * FROM enterprises WHERE enterprise_code = ?", [enterprise_code])


def enterprise_sites(store: Store, enterprise_code: str, *, subcontracted: bool = False) -> list[str]:
    """The codes of the sites whose construction enterprise is ``enterprise_code``, sorted; with
    ``subcontracted`` also the sites where it is a subcontractor."""
    sql = "SELECT site_code FROM sites WHERE enterprise_code = ?"
    params: list[Any] = [enterprise_code]
    if subcontracted:
        sql += " UNION SELECT site_code FROM site_subcontractors WHERE enterprise_code = ?"
        params.append(enterprise_code)
    return sorted(r[0] for r in store.execute(sql, params))


def site_enterprises(store: Store, site_code: str) -> dict:
    """Who builds a site: ``{"contractor": row or None, "subcontractors": [row + scope_of_work]}``, rows
    as :func:`enterprise` returns them."""
    code = store.scalar("SELECT enterprise_code FROM sites WHERE site_code = ?", [site_code])
    subs = store.rows("SELECT e.*, s.scope_of_work FROM site_subcontractors s JOIN enterprises e "
                      "USING (enterprise_code) WHERE s.site_code = ? ORDER BY e.enterprise_code", [site_code])
    return {"contractor": enterprise(store, code) if code else None, "subcontractors": subs}
