"""The page for any URL that is not a page of the workbench."""

import dash
from dash import dcc, html

from sitetwin.dashboards.pages._labels import page_title
from sitetwin.data.i18n import N_, Translator

_ = Translator("dashboards.pages")
NAME = N_("Not found")


def layout(**query):
    return html.Div([
        html.H1(_("Page not found"), id="notfound-title"),
        html.P(_("There is no workbench page at this address. The pages are listed in the header.")),
        dcc.Link(_("Back to the site overview"), href="/", id="notfound-home"),
    ], className="notfound")


dash.register_page(__name__, path="/404", name=NAME, title=page_title(N_("not found")), layout=layout, nav=False)
