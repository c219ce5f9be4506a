"""The page for any URL that is not a page of the workbench."""

import dash
from dash import dcc, html


def layout(**query):
    return html.Div([
        html.H1("Page not found", id="notfound-title"),
        html.P("There is no workbench page at this address. The pages are listed in the header."),
        dcc.Link("Back to the site overview", href="/", id="notfound-home"),
    ], className="notfound")


dash.register_page(__name__, path="/404", name="Not found", title="sitetwin · not found", layout=layout, nav=False)
