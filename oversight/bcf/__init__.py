"""BCF (BIM Collaboration Format) 2.0/2.1/3.0: findings out to BIM tools, their issues in as findings.

``read_bcf``/``write_bcf`` work on an in-memory ``Archive``; ``export_bcf``/``import_bcf``
connect it to the store's findings. lxml does the XML (hardened: no DTDs, entities or
network) rather than bcf-client: see ``read`` for the checks a file from outside passes.
"""

from sitetwin.oversight.bcf.model import Archive, Camera, Comment, Component, Topic, Viewpoint
from sitetwin.oversight.bcf.read import read_bcf
from sitetwin.oversight.bcf.topics import (
           ExportReport,
           ImportReport,
           add_viewpoint,
           export_bcf,
           finding_viewpoints,
           import_bcf,
)
from sitetwin.oversight.bcf.write import write_bcf

__all__ = ["Archive", "Camera", "Comment", "Component", "ExportReport", "ImportReport", "Topic", "Viewpoint",
           "add_viewpoint", "export_bcf", "finding_viewpoints", "import_bcf", "read_bcf", "write_bcf"]
