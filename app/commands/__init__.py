"""The command groups of ``sitetwin``: one module per capability, each with ``register(app)``.

They mirror the library (``bim`` -> ``sitetwin bim ...``) and are the only place where one
command combines several packages (a detection run that raises findings, say). Heavy
libraries are imported inside commands, so that ``sitetwin --help`` answers at once.
"""

from __future__ import annotations

import typer

from sitetwin.app.commands import (
    bim,
    cluster,
    enterprises,
    lake,
    oversight,
    panorama,
    sensors,
    serve,
    survey,
    training,
    vision,
    works,
)

# The order of the groups in ``sitetwin --help``.
GROUPS = (bim, survey, panorama, sensors, training, oversight, enterprises, works, vision, serve, cluster, lake)


def register_all(app: typer.Typer) -> None:
    for group in GROUPS:
        group.register(app)
