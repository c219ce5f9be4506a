"""The workbench app: the shell (header, site picker, shared state, alerts) around the page modules.

>>> app = create_app("site.duckdb")               # doctest: +SKIP
>>> app.run(host="127.0.0.1", port=8050)         # doctest: +SKIP

Pages are the modules of ``dashboards.pages`` (see that package's docstring for how to add
one). State that helps sharing lives in the URL: ``?site=DEMO&element=<GlobalId>&pano=<id>``;
the shell's ``dcc.Store`` ``shell-state`` holds what pages share while one is open, and a
clientside callback mirrors it into the address bar without reloading the page.
"""

from __future__ import annotations

import atexit
import functools
import importlib
import pkgutil
import shutil
import tempfile
from html import escape as _escape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

from sitetwin.dashboards.alerts import log, show_error
from sitetwin.dashboards.callbacks import callback, clientside_callback
from sitetwin.data import i18n
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards")
_pages = Translator("dashboards.pages")       # the pages' names (each page module marks its own with N_)

PAGES_PACKAGE = "sitetwin.dashboards.pages"
PENDING_POLL_MS = 5000
ASSETS = Path(__file__).with_name("assets")


def create_app(db: str | Path, *, jobs_dir: str | Path | None = None, debug: bool = False, lake: str | None = None):
    """A Dash app serving the store at ``db``: every request reads it afresh, read-only. With ``lake``
    (a folder or URI), the portfolio's figures come from that city lake (``access.scoped_lake``); accounts,
    sessions and every site's own pages stay with the store."""
    from sitetwin.dashboards import access
    from sitetwin.dashboards.callbacks import attach, job_manager
    from sitetwin.data.errors import StoreError

    db = Path(db)
    if not db.exists():
        raise StoreError(N_("{db}: no store there; build one with `sitetwin init` or `sitetwin demo`"), db=db)
    import diskcache

    if jobs_dir:
        jobs = Path(jobs_dir)
    else:
        jobs = Path(tempfile.mkdtemp(prefix="sitetwin-jobs-"))
        atexit.register(shutil.rmtree, jobs, ignore_errors=True)     # ours: gone with the process
    manager = job_manager(diskcache.Cache(str(jobs)))
    app = _workbench_class()(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        assets_ignore=r"^sitetwin-viewer\.js$",   # the WebGL viewer's bundle: the twin page loads it, no other page
        title="sitetwin",
        suppress_callback_exceptions=True,
        background_callback_manager=manager,
        on_error=_on_callback_error,
        update_title=None,   # Dash documents None (no "Updating..." title) though it types it str
    )
    import_pages()
    app.layout = shell_layout
    access.install(app.server, str(db))
    attach(app, str(db))
    _check_dash_requests(app.server)
    app.server.config["SITETWIN_JOBS"] = str(jobs)
    app.server.config[access.LAKE_CONFIG] = str(lake) if lake else None
    _register_media_routes(app.server)
    from sitetwin.dashboards.viewer.routes import register as register_viewer

    register_viewer(app.server)      # the WebGL viewer's geometry, colours and points, scoped by site
    return app


@functools.cache
def _workbench_class():
    """Dash, with the page's HTML in the request's language (``<html lang>``, the loading line)."""
    import dash

    class Workbench(dash.Dash):
        def interpolate_index(self, **kwargs):
            entry = kwargs.get("app_entry") or ""
            kwargs["app_entry"] = entry.replace("Loading...", _escape(_("Loading...")), 1)
            page = super().interpolate_index(**kwargs)
            return page.replace("<html>", f'<html lang="{i18n.current_language()}">', 1)

    return Workbench


def import_pages(package: str = PAGES_PACKAGE) -> list[str]:
    """Import every page module of ``package`` once (each registers itself with ``dash.register_page``).

    A page's layout is called with its URL's query as one-line text (``inputs.clean_query``): a
    repeated or odd parameter cannot reach it as a list or with control characters.
    """
    import dash

    from sitetwin.dashboards.inputs import query_checked

    pkg = importlib.import_module(package)
    names = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{package}.{info.name}")
        page = dash.page_registry.get(module.__name__)
        if page is not None and page.get("layout") is None and hasattr(module, "layout"):
            page["layout"] = module.layout
        if page is not None and callable(page.get("layout")):
            page["layout"] = query_checked(page["layout"])
        names.append(module.__name__)
    return names


def _on_callback_error(err: Exception):
    """Expected failures become a message in the shell and no update; anything else is a bug and raised."""
    from sitetwin.data.errors import SitetwinError

    if isinstance(err, SitetwinError):
        show_error(err)
        return None
    raise err


# --------------------------------------------------------------------------------------
# the shell

def shell_layout():
    import dash
    import flask
    from dash import dcc, html

    from sitetwin.dashboards.access import current_caller, logout_form

    # Dash also builds the layout once to validate it, outside any request or (a served worker's setup,
    # dashboards.serving) in a request of its own: no caller then
    setup = not flask.has_request_context() or flask.g.get("sitetwin_setup", False)
    caller = None if setup else current_caller()
    who = caller.label if caller else ""
    logout = [] if caller is None or caller.open_store else [logout_form()]
    return html.Div([
        dcc.Location(id="shell-url", refresh="callback-nav"),
        dcc.Store(id="shell-state", data={}),
        html.Header([
            html.A("sitetwin", href="/", className="brand", id="shell-brand"),
            html.Nav(id="shell-nav", className="nav"),
            html.Div([
                dcc.Dropdown(id="shell-site", clearable=False, placeholder=_("site"), className="site-picker"),
                html.Span(who, id="shell-user", className="user"),
                *logout,
                # filled for the page shown (its links keep the page and its query); a full load, so that
                # everything, the shell included, is rendered again in the language picked
                html.Nav(language_switcher("/"), id="shell-lang", className="languages",
                         title=_("Language")),
            ], className="header-right"),
        ], className="header"),
        html.Div(id="shell-alert", className="alert hidden"),
        # what is still being prepared for the pages (the demo's detector, say); polled while there is some
        html.Div(id="shell-pending", className="pending hidden"),
        dcc.Interval(id="shell-pending-poll", interval=PENDING_POLL_MS),
        dcc.Store(id="shell-pending-seen", data=[]),
        html.Main(dash.page_container, className="page"),
    ], className="shell")


def nav_links(site: str | None, pathname: str | None):
    import dash
    from dash import dcc

    links = []
    for page in dash.page_registry.values():
        if page["module"].endswith("not_found_404") or page.get("nav") is False:
            continue
        href = page["relative_path"] + (f"?{urlencode({'site': site})}" if site else "")
        active = pathname == page["relative_path"]
        links.append(dcc.Link(_pages(page["name"]), href=href, id={"type": "shell-nav-link", "page": page["module"]},
                              className="nav-link active" if active else "nav-link"))
    return links


def language_switcher(target: str) -> list:
    """The languages, each named in itself; the current one is plain text, the others links to ``target``
    (a local path and query) in that language."""
    from dash import html

    from sitetwin.dashboards.access import language_links

    out: list = []
    for lang, name, href in language_links(target):
        if href is None:
            out.append(html.Span(name, lang=lang, className="lang current", id=f"shell-lang-{lang}"))
        else:
            out.append(html.A(name, href=href, lang=lang, className="lang", id=f"shell-lang-{lang}"))
    return out


class BackgroundServer:
    """An app served by werkzeug in a daemon thread on a free local port (``url``), until ``stop()``:
    for embedding the workbench in another process's run, the tests and the benchmark."""

    def __init__(self, app, host: str = "127.0.0.1"):
        import threading

        from werkzeug.serving import make_server

        self.server = make_server(host, 0, app.server, threaded=True)
        self.url = f"http://{host}:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.thread.join(5)


def parse_query(search: str | None) -> dict[str, str]:
    return dict(parse_qsl((search or "").lstrip("?")))


def default_site(site: str | None) -> str | None:
    """``site`` when the caller may see it, else the first of the caller's sites (None: no site at all)."""
    from sitetwin.dashboards.access import sites_in_scope

    codes = [s["site_code"] for s in sites_in_scope()]
    if site in codes:
        return site
    return codes[0] if codes else None


from dash import Input, Output, State, ctx, no_update  # noqa: E402  (dash is imported with the app)

from sitetwin.dashboards import inputs as i  # noqa: E402
from sitetwin.dashboards.inputs import BadInput  # noqa: E402

i.declare({
    "shell-url.search": i.optional(i.url_part), "shell-url.pathname": i.optional(i.url_path),
    "shell-site.value": i.optional(i.site_code),
    # [key, label] of what the page was waiting for (data.pending)
    "shell-pending-seen.data": i.optional(i.list_of(i.tuple_of(i.text(i.TITLE_MAX), i.text(i.TITLE_MAX)))),
})


@callback(Output("shell-site", "options"), Output("shell-site", "value"), Output("shell-url", "search"),
          Output("shell-nav", "children"),
          Input("shell-url", "search"), Input("shell-site", "value"), State("shell-url", "pathname"))
def sync_site(search, picked, pathname):
    """The site picker follows the URL; picking a site navigates to it (the page reloads its data)."""
    from sitetwin.dashboards.access import sites_in_scope

    sites = sites_in_scope()
    codes = [s["site_code"] for s in sites]
    options = [{"label": f"{s['site_code']} · {s['name'] or ''}".rstrip(" ·"), "value": s["site_code"]} for s in sites]
    query = parse_query(search)
    if ctx.triggered_id == "shell-site" and picked in codes and picked != query.get("site"):
        return options, picked, "?" + urlencode({"site": picked}), nav_links(picked, pathname)
    site = query.get("site") if query.get("site") in codes else (codes[0] if codes else None)
    return options, site, no_update, nav_links(site, pathname)


@callback(Output("shell-lang", "children"), Input("shell-url", "pathname"), Input("shell-url", "search"))
def switch_language_links(pathname, search):
    """The switcher's links follow the page shown, with its query (site, element ...)."""
    return language_switcher((pathname or "/") + (search or ""))


@callback(Output("shell-alert", "className", allow_duplicate=True),
          Input("shell-alert-close", "n_clicks"), prevent_initial_call=True)
def close_alert(n):
    return "alert hidden"


@callback(Output("shell-pending", "children"), Output("shell-pending", "className"),
          Output("shell-pending-seen", "data"), Output("shell-pending-poll", "disabled"),
          Input("shell-url", "pathname"), Input("shell-pending-poll", "n_intervals"),
          State("shell-pending-seen", "data"), State("shell-url", "search"))
def show_pending(pathname, _n, seen, search):
    """Say what this page is still waiting for, and once it landed, that a reload shows it."""
    from sitetwin.dashboards.access import current_db, require_caller
    from sitetwin.dashboards.components import pending_banner
    from sitetwin.data.pending import read_pending

    require_caller()
    everything = read_pending(current_db())
    items = [p for p in everything if p.concerns(pathname or "/")]
    landed = [label for key, label in (seen or []) if key not in {p.key for p in everything}]
    children = pending_banner(items, landed, reload_href=(pathname or "/") + (search or ""))
    cls = "pending" if children else "pending hidden"
    # keep polling while something is on its way; a page opened later starts polling again
    return children, cls, [[p.key, p.label] for p in items], not items


# Pages put what helps sharing (element, pano, survey ...) in shell-state; the address bar follows
# without a navigation, so the page is not rebuilt.
clientside_callback(
    """
    function(state) {
        if (!state) { return window.dash_clientside.no_update; }
        const url = new URL(window.location.href);
        for (const [k, v] of Object.entries(state)) {
            if (v === null || v === undefined || v === '') { url.searchParams.delete(k); }
            else { url.searchParams.set(k, v); }
        }
        if (url.href !== window.location.href) { window.history.replaceState(window.history.state, '', url.href); }
    }
    """,
    Input("shell-state", "data"),
    prevent_initial_call=True,
)


# --------------------------------------------------------------------------------------
# Dash's own callbacks (the page router) are not ours to wrap: their declared inputs are checked here

# the callback request's envelope: what dash-renderer sends (values inside are checked by the callbacks)
_ENVELOPE = {"output": str, "outputs": (list, dict), "inputs": list, "state": list, "changedPropIds": list}
DASH_COMPONENTS = ("_pages_location",)       # dash.page_container's URL (Dash's router reads it)

i.declare({"_pages_location.pathname": i.optional(i.url_path), "_pages_location.search": i.optional(i.url_part)})


def _check_dash_requests(server) -> None:
    """Before Dash dispatches a callback request: a body that is no callback request is answered 400, and a
    value of Dash's own components that does not fit its declared shape gets the shell's message (no update)."""
    import json

    import flask

    from sitetwin.dashboards.alerts import error_props

    @server.before_request
    def _dash_request():
        request = flask.request
        if request.method != "POST" or not request.path.endswith("/_dash-update-component"):
            return None
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "output" not in body or "inputs" not in body or any(
                key in body and not isinstance(body[key], kind) for key, kind in _ENVELOPE.items()):
            return flask.jsonify({"error": "not a Dash callback request"}), 400
        try:
            _check_dash_values([*body["inputs"], *body.get("state", [])])
        except BadInput as exc:
            answer = {"multi": True, "response": {}, "sideUpdate": {"shell-alert": error_props(exc)}}
            return flask.Response(json.dumps(answer, default=lambda component: component.to_plotly_json()),
                                  mimetype="application/json")
        return None


def _check_dash_values(deps: list) -> None:
    for dep in deps:
        if isinstance(dep, dict) and dep.get("id") in DASH_COMPONENTS:
            where = f"{dep['id']}.{dep.get('property')}"
            try:
                check = i.shape_of(dep["id"], str(dep.get("property")))
            except KeyError:
                raise BadInput(where, "no such property") from None
            check(dep.get("value"), where)


# --------------------------------------------------------------------------------------
# media: evidence crops, served only to callers who may read the hazard's site

def _register_media_routes(server) -> None:
    import flask

    from sitetwin.dashboards.access import scoped_route

    @scoped_route(server, "/media/evidence/<hazard_id>/<int:index>", table="hazards", key="hazard_id")
    def evidence(store, site, hazard_id: str, index: int):
        from sitetwin.dashboards.queries import evidence_path

        path = evidence_path(store, hazard_id, index)
        if path is None:
            return flask.jsonify({"error": "not found"}), 404
        return flask.send_file(path, max_age=3600)


class WarmUp:
    """The warm-up thread: ``stop()`` lets it finish the site it is on and waits for it.

    Not a daemon: a daemon thread still inside DuckDB when the interpreter exits aborts the
    process (a Ctrl+C right after the workbench started did).
    """

    def __init__(self, target):
        import threading

        self.stopping = threading.Event()
        self.thread = threading.Thread(target=target, args=(self.stopping,), name="sitetwin-warm-up")
        self.thread.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        self.stopping.set()
        self.thread.join(timeout_s)


def warm_up(db: str | Path, *, wait: bool = False) -> WarmUp:
    """Prepare each site's model geometry (the plotly twin's and the WebGL viewer's) and progress report in a
    background thread, so that the first 3D view and the first overview open quickly."""

    def run(stopping):
        from sitetwin.dashboards.connections import read_store
        from sitetwin.dashboards.queries import current_model_ids, progress_report
        from sitetwin.dashboards.scene import site_geometry
        from sitetwin.dashboards.viewer.geometry import site_geometry_file

        try:
            with read_store(db) as store:
                sites = [r["site_code"] for r in store.rows("SELECT site_code FROM sites ORDER BY site_code")]
            for site in sites:          # one short connection per site: writers get in between
                if stopping.is_set():
                    return
                with read_store(db) as store:
                    ids = current_model_ids(store, site)
                    if ids:
                        site_geometry(store, site, ids)
                        site_geometry_file(store, site)      # the WebGL viewer's buffers, kept beside the store
                        progress_report(store, site)
        except Exception as exc:       # a warm-up is an optimisation: never stop the server for it
            log.warning("warm-up skipped: %s", exc)

    warm = WarmUp(run)
    if wait:
        warm.thread.join()
    return warm
