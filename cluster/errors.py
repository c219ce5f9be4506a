"""Errors of a cluster run: a manifest refused before anything starts, a cluster that does not answer."""

from sitetwin.data.errors import SitetwinError


class ClusterError(SitetwinError):
    """A cluster run could not start: no Ray cluster at the address, Ray refused the connection."""


class ManifestError(ClusterError, ValueError):
    """The manifest is not valid: not YAML, an unknown kind, a missing field or file, a site not in its store.

    The message names the unit (its 1-based index, kind and site) or the file.
    """
