"""This suite runs on both engines; `@pytest.mark.engines(...)` narrows a test to one."""

from tests.engine_matrix import engine_name  # noqa: F401
