"""The fuzz suite (issue 14): hypothesis with a fixed seed and bounded examples, in the default run.

Each test sets ``max_examples`` itself (at least 200 per callback and per parser); the profile
below makes runs reproducible (derandomize), keeps no example database in the checkout, and has
no per-example deadline (the first example of a callback may import a module).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

settings.register_profile(
    "sitetwin",
    derandomize=True,
    database=None,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("sitetwin")
