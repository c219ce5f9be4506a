"""Design models from IFC: elements, properties, storeys, tessellated geometry, georeferencing, schedules.

>>> from data import open_store
>>> from bim import load_model, load_mesh
>>> with open_store("sitetwin.duckdb") as store:       # doctest: +SKIP
...     report = load_model(store, "building.ifc", site_code="DEMO")
...     mesh = load_mesh(store, site_code="DEMO")
"""

from sitetwin.bim.errors import BimError, IfcFileError, NoElementsError
from sitetwin.bim.geometry import ModelMesh
from sitetwin.bim.load import LoadReport, load_model, parse_model
from sitetwin.bim.mesh import load_mesh, resolve_site, site_origin

__all__ = ["BimError", "IfcFileError", "LoadReport", "ModelMesh", "NoElementsError", "load_mesh", "load_model",
           "parse_model", "resolve_site", "site_origin"]
