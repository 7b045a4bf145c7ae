"""What the tests share beyond fixtures (tests/conftest.py holds the fixtures)."""
import os

import pytest


def require_e2e(reason: str):
    """Skip an end-to-end test whose machine prerequisite is missing, or fail under CI
    (``SEQLAB_REQUIRE_E2E=1``), where every prerequisite is installed by ``.ci/run``."""
    if os.environ.get("SEQLAB_REQUIRE_E2E") == "1":
        pytest.fail("end-to-end prerequisite missing under CI: " + reason)
    pytest.skip(reason)
