"""5-field Unix cron -> Quartz cron, the only dialect Airbyte's schedule accepts."""

import re

from ingest.core.errors import InvalidRequestError

# Quartz numbers days 1-7 from Sunday; Unix numbers 0-7 from Sunday (0 and 7 both Sunday). Emitting names
# avoids the off-by-one entirely.
_QUARTZ_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
_UNIX_DAY_NAMES = {name: index for index, name in enumerate(_QUARTZ_DAYS)}

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}

_FIELD = re.compile(r"^[0-9A-Za-z*/,\-]+$")
_BOUNDS = ((0, 59), (0, 23), (1, 31), (1, 12))


def unix_to_quartz(cron: str) -> str:
    """Convert `m h dom mon dow` to Quartz `s m h dom mon dow`; raises InvalidRequestError if inexpressible.

    Unix cron fires when either day field matches if both are restricted; Quartz requires one of them to
    be `?`, so that combination is rejected rather than silently changing the schedule.
    """
    text = _MACROS.get(cron.strip().lower(), cron.strip())
    parts = text.split()
    if len(parts) != 5:
        raise InvalidRequestError(f"schedule must be a 5-field cron expression, got {len(parts)} fields")
    for part in parts:
        if not _FIELD.match(part):
            raise InvalidRequestError(f"unsupported cron field {part!r}")
    minute, hour, dom, month, dow = parts
    for value, (low, high) in zip((minute, hour, dom, month), _BOUNDS, strict=True):
        _check_numbers(value, low, high)
    days = _expand_days(dow)
    if days is None or len(days) == 7:
        return f"0 {minute} {hour} {dom} {month.upper()} ?"
    if dom != "*":
        raise InvalidRequestError(
            "a cron schedule restricting both day-of-month and day-of-week cannot be converted for Airbyte"
        )
    return f"0 {minute} {hour} ? {month.upper()} {_compress_days(days)}"


def _check_numbers(value: str, low: int, high: int) -> None:
    for number in re.findall(r"\d+", value.split("/")[0]):
        if not low <= int(number) <= high:
            raise InvalidRequestError(f"cron value {number} is outside {low}-{high}")


def _day(token: str) -> int:
    name = token.upper()
    if name in _UNIX_DAY_NAMES:
        return _UNIX_DAY_NAMES[name]
    if not token.isdigit() or int(token) > 7:
        raise InvalidRequestError(f"invalid cron day of week {token!r}")
    return int(token) % 7


def _expand_days(dow: str) -> set[int] | None:
    """The set of days (0 = Sunday) a Unix day-of-week field selects; None for `*`."""
    if dow == "*":
        return None
    days: set[int] = set()
    for item in dow.split(","):
        base, _, step_text = item.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise InvalidRequestError(f"invalid cron step in {item!r}")
        if base == "*":
            start, end = 0, 6
        elif "-" in base:
            first, _, last = base.partition("-")
            start, end = _day(first), _day(last)
            if last == "7" or (last.upper() == "SUN" and start > 0):
                end = 7  # `5-7` / `FRI-SUN`: up to and including Sunday
        else:
            start = _day(base)
            end = 6 if step else start
        if end < start:
            raise InvalidRequestError(f"invalid cron day range {item!r}")
        days.update(day % 7 for day in range(start, end + 1, step or 1))
    return days


def _compress_days(days: set[int]) -> str:
    """`MON-FRI`, `SUN`, `SUN,TUE,THU`: consecutive runs (in Quartz order) become ranges."""
    ordered = sorted(days)
    runs: list[list[int]] = []
    for day in ordered:
        if runs and day == runs[-1][-1] + 1:
            runs[-1].append(day)
        else:
            runs.append([day])
    return ",".join(
        _QUARTZ_DAYS[run[0]] if len(run) == 1 else f"{_QUARTZ_DAYS[run[0]]}-{_QUARTZ_DAYS[run[-1]]}"
        for run in runs
    )
