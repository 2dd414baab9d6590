"""What the command line makes of its settings, before any work: each one checked and parsed
once, from the highest of flag > environment variable > config file > default.

Options that say one thing two ways are one setting: ``--account-ids`` / ``--account-id`` and
``--auth-url`` / ``--subdomain``. The one given at the higher level wins (``--account-ids 2,3``
beats ``SFMC_ACCOUNT_ID=1``); at one level, two account options are a usage error and the auth
URL beats the subdomain it would be built from.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from sfmc_source.errors import ConfigError
from sfmc_source.schedule import parse_duration

Parsed = TypeVar("Parsed")
# Of each pair, the first wins when both are given at one level.
RIVALS = (("account_ids", "account_id"), ("auth_url", "subdomain"))
MAX_OFFSET = timedelta(hours=14)  # the widest UTC offset in use (Kiribati, UTC+14)
_LEVELS = (
    (ParameterSource.COMMANDLINE, "both given as flags"),
    (ParameterSource.ENVIRONMENT, "both set in the environment"),
    (ParameterSource.DEFAULT_MAP, "both set in the config file"),
)
QUOTA_INTERVAL = 15 * 60  # below this, `run` warns about the account's yearly API quota
_SUBDOMAIN = re.compile(r"[0-9A-Za-z-]+")
_SUBDOMAIN_IN_URL = re.compile(r"\b(mc[0-9a-z-]{26})\.", re.IGNORECASE)


def checked(
    parse: Callable[[str], Parsed],
) -> Callable[[click.Context, click.Parameter, Any], Parsed | None]:
    """A click callback that parses a value wherever it came from; ConfigError is usage."""

    def callback(ctx: click.Context, param: click.Parameter, value: Any) -> Parsed | None:
        if value is None:
            return None
        try:
            return parse(str(value))
        except ConfigError as exc:
            raise click.UsageError(str(exc), ctx) from None

    return callback


def settled(ctx: click.Context, settings: dict[str, Any]) -> dict[str, Any]:
    """``settings`` with the outranked option of each rival pair set to None."""
    chosen = dict(settings)
    for first, second in RIVALS:
        if chosen.get(first) is None or chosen.get(second) is None:
            continue
        first_level, second_level = _level(ctx, first), _level(ctx, second)
        if first_level == second_level and first == "account_ids":
            raise ConfigError(
                f"use --account-ids or --account-id, not both ({_LEVELS[first_level][1]})"
            )
        chosen[second if first_level <= second_level else first] = None
    return chosen


def _level(ctx: click.Context, name: str) -> int:
    """0 for a flag, 1 for an environment variable, 2 for the config file, 3 for a default."""
    source = ctx.get_parameter_source(name)
    return next((i for i, (s, _) in enumerate(_LEVELS) if s == source), len(_LEVELS))


def business_units(account_ids: list[int] | None, account_id: int | None) -> list[int | None]:
    """The MIDs to sync, one client each; ``[None]``: the package's own business unit."""
    return list(account_ids) if account_ids else [account_id]


def parse_account_ids(text: str) -> list[int]:
    """``512345678,512345679`` as MIDs, each once, in order."""
    mids: list[int] = []
    for part in (p.strip() for p in text.split(",")):
        if not part.isdigit() or int(part) == 0:
            raise ConfigError(
                f"--account-ids {text!r}: use MIDs (whole numbers) separated by commas"
            )
        if int(part) not in mids:
            mids.append(int(part))
    return mids


def parse_offset(text: str) -> timezone:
    """``-06:00`` (SFMC's system time), ``-07:00`` (old Stack 4 tenants), ..."""
    match = re.fullmatch(r"([+-])(\d{2}):?(\d{2})", text.strip())
    rule = "use ±HH:MM within ±14:00, e.g. -06:00 (SFMC system time)"
    if not match or int(match[3]) >= 60:
        raise ConfigError(f"--system-offset {text!r}: {rule}")
    offset = timedelta(hours=int(match[2]), minutes=int(match[3]))
    if offset > MAX_OFFSET:
        raise ConfigError(f"--system-offset {text!r}: {rule}")
    return timezone(-offset if match[1] == "-" else offset)


def check_subdomain(text: str) -> str:
    """The tenant subdomain alone: letters, digits and hyphens (a URL or a host is refused)."""
    if _SUBDOMAIN.fullmatch(text):
        return text
    found = _SUBDOMAIN_IN_URL.search(text)
    hint = f" (here: {found[1]})" if found else ""
    raise ConfigError(
        f"--subdomain {text!r}: use the 28-character string starting with mc, not a URL{hint}; "
        "a whole auth URL goes in --auth-url"
    )


def parse_interval(text: str) -> float:
    """``--every``: a duration of more than zero."""
    seconds = parse_duration(text, "--every")
    if seconds <= 0:
        raise ConfigError(f"--every {text!r}: the interval must be more than zero, e.g. 3h")
    return seconds


def parse_jitter(text: str) -> float:
    return parse_duration(text, "--jitter")


def quota_warning(every: str, seconds: float) -> str | None:
    """A line for an interval short enough to spend the account's yearly API quota fast."""
    if seconds >= QUOTA_INTERVAL:
        return None
    runs = round(365 * 86_400 / seconds)
    return (
        f"--every {every} is {runs:,} syncs a year, each spending requests of the account's "
        "yearly API quota (shared with its other integrations); 15m or more is advised"
    )


def read_config(path: str, known: Collection[str], takes: Collection[str]) -> dict[str, Any]:
    """The settings of a TOML file that a command ``takes``; keys of other commands (in
    ``known``) are left for them, any other key is a usage error."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except OSError as exc:
        raise ConfigError(f"--config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"--config {path}: not valid TOML ({exc})") from None
    settings = {key.replace("-", "_"): value for key, value in data.items()}
    unknown = sorted(set(settings) - set(known))
    if unknown:
        raise ConfigError(
            f"--config {path}: unknown key {', '.join(unknown)}; "
            f"valid keys: {', '.join(sorted(known))}"
        )
    return {key: _flat(value) for key, value in settings.items() if key in takes}


def _flat(value: Any) -> Any:
    """A TOML list (``collections``, ``account_ids``) as the comma-separated text of a flag."""
    return ",".join(map(str, value)) if isinstance(value, list) else value


def defaults(ctx: click.Context, settings: Mapping[str, Any]) -> None:
    """A config file's settings as defaults of the command: flags and variables still win."""
    ctx.default_map = {**(ctx.default_map or {}), **settings}
