"""The workbench's pages: one module per user task. Adding a page is adding a module here.

A page module (see ``overview.py`` for a small one):

1. calls ``dash.register_page(__name__, path="/mypage", name="My page", order=N, layout=layout)``
   (``order`` places it in the header; ``nav=False`` keeps it out of the header);
2. defines ``layout(site=None, **query)``: Dash calls it with the URL's query, so a shared
   link (``/mypage?site=DEMO&element=...``) opens the same view. It builds components only;
   use ``dashboards.app.default_site(site)`` to fall back to the caller's first site and
   keep that in a ``dcc.Store(id="mypage-site")`` for the callbacks;
3. prefixes every component id with the page name (``mypage-...``), and uses dict ids
   with ``MATCH``/``ALL`` for per-element widgets;
4. declares callbacks with ``dashboards.callbacks.callback`` (same arguments as
   ``dash.callback``) and reads data only inside ``with site_store(site) as store:`` (or
   ``scoped_store()``/``object_store(...)``) from ``dashboards.access``: that is where the
   caller's scope is checked, and a connection is held only for that block. Callbacks call
   library functions and ``dashboards.queries``; they do not compute inline;
5. writes what helps sharing (``element``, ``pano`` ...) to the shell's
   ``Output("shell-state", "data", allow_duplicate=True)``: the address bar follows.

``create_app`` imports every module here whose name does not start with ``_``; the module
``not_found_404`` is the 404 page. The access tests walk every registered callback, so a
new page is checked for scope leaks without further work.
"""
