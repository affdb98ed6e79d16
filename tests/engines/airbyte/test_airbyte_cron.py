import pytest

from ingest.core.errors import InvalidRequestError
from ingest.engines.airbyte import unix_to_quartz
from tests.fake_airbyte.app import validate_quartz


@pytest.mark.parametrize(
    ("unix", "quartz"),
    [
        ("0 0 * * *", "0 0 0 * * ?"),
        ("*/30 * * * *", "0 */30 * * * ?"),
        ("0 */6 * * *", "0 0 */6 * * ?"),
        ("15 2 * * 1-5", "0 15 2 ? * MON-FRI"),
        ("0 3 1 * *", "0 0 3 1 * ?"),
        ("0 9 * * 0", "0 0 9 ? * SUN"),
        ("0 9 * * 7", "0 0 9 ? * SUN"),
        ("0 9 * * 5-7", "0 0 9 ? * SUN,FRI-SAT"),
        ("0 9 * * 1,3,5", "0 0 9 ? * MON,WED,FRI"),
        ("0 9 * * */2", "0 0 9 ? * SUN,TUE,THU,SAT"),
        ("0 9 * * mon-fri", "0 0 9 ? * MON-FRI"),
        ("0 9 * * 0-6", "0 0 9 * * ?"),
        ("30 4 1,15 jan,jul *", "0 30 4 1,15 JAN,JUL ?"),
        ("@daily", "0 0 0 * * ?"),
        ("@weekly", "0 0 0 ? * SUN"),
    ],
)
def test_unix_to_quartz(unix: str, quartz: str) -> None:
    converted = unix_to_quartz(unix)

    assert converted == quartz
    assert validate_quartz(converted) == quartz  # the fake applies Airbyte's checks


@pytest.mark.parametrize(
    "cron",
    [
        "0 0 * *",
        "0 0 0 * * ?",
        "0 9 1 * 1",
        "61 * * * *",
        "0 25 * * *",
        "0 9 * * 8",
        "0 9 * * 5-1",
        "0 9 ? * *",
    ],
)
def test_unix_to_quartz_rejects(cron: str) -> None:
    with pytest.raises(InvalidRequestError):
        unix_to_quartz(cron)
