"""The ``sfmc-source`` command line. Thin: it maps options onto library calls."""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import IO, Any, NoReturn

import click

from sfmc_source import __version__
from sfmc_source.client import DEFAULT_CONCURRENCY
from sfmc_source.emulator import Emulator, EmulatorConfig, Faults, RestOptions, sizes_for
from sfmc_source.emulator.auth import READ_SCOPES
from sfmc_source.errors import ConfigError, SfmcError, root_cause
from sfmc_source.options import (
    business_units,
    check_subdomain,
    checked,
    defaults,
    parse_account_ids,
    parse_interval,
    parse_jitter,
    parse_offset,
    quota_warning,
    read_config,
    settled,
)
from sfmc_source.report import counted, plural
from sfmc_source.specs import COLLECTIONS, Collection

# DuckDB names a file's catalog after the file, and a catalog and a schema of the same name
# make every two-part table name ambiguous, so the default file is not called sfmc.duckdb.
DEFAULT_DESTINATION = "duckdb:///./sfmc_warehouse.duckdb"


def _scale(ctx: click.Context | None, param: click.Parameter | None, value: str) -> str:
    try:
        sizes_for(value)
    except ValueError:
        raise click.BadParameter(
            "use tiny, small, medium, large, events or a whole number N (N × small)"
        ) from None
    return value


def _malformed(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, int]:
    parsed = {}
    for value in values:
        resource, _, page = value.rpartition(":")
        if not resource or not page.isdigit() or int(page) < 1:
            raise click.BadParameter(f"{value!r}: use RESOURCE:PAGE, e.g. campaigns:2 or List:1")
        parsed[resource] = int(page)
    return parsed


def _scopes(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[str, ...]:
    if value is None:
        return READ_SCOPES
    scopes = tuple(s.strip() for s in value.split(",") if s.strip())
    unknown = sorted(set(scopes) - set(READ_SCOPES))
    if unknown:
        raise click.BadParameter(
            f"unknown scope {', '.join(unknown)}; choose from {', '.join(READ_SCOPES)}"
        )
    return scopes


class UsageLine(click.ClickException):
    """A usage error as one line on stderr, like every other failure."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", file=file or sys.stderr)


# `sfmc-source` alone prints the help (click 8.2+ says so with this error): left as it is.
_HELP_INSTEAD = getattr(click.exceptions, "NoArgsIsHelpError", ())


@contextmanager
def _one_line() -> Iterator[None]:
    try:
        yield
    except click.UsageError as exc:
        if isinstance(exc, _HELP_INSTEAD):
            raise
        raise UsageLine(exc.format_message()) from None


class Commands(click.Group):
    """The commands; each usage error, click's own included, is one ``error: …`` line."""

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        with _one_line():
            return super().make_context(info_name, args, parent, **extra)

    def invoke(self, ctx: click.Context) -> Any:
        with _one_line():
            return super().invoke(ctx)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sfmc-source")
def main() -> None:
    """Salesforce Marketing Cloud data into your warehouse, incrementally."""
    # Arrow's own allocator keeps what a sync freed (its peak memory grew by a quarter with
    # it); the system's gives it back. Read as Arrow loads, before any command imports it.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def configure_runtime(debug: bool, secrets: list[str | None] | None = None) -> None:
    """Process-wide settings of a command that runs dlt, made as it starts."""
    from sfmc_source.report import LibraryLog

    # Where Airflow is installed, dlt asks its metadata database for settings on every
    # pipeline (about 2 s). The command line takes its settings from flags, environment and
    # --config.
    os.environ.setdefault("PROVIDERS__ENABLE_AIRFLOW_SECRETS", "false")
    # dlt would take SIGINT and SIGTERM for itself while it normalizes and loads, and forget
    # them after: a `run` loop signalled then would never stop. The command line's own
    # handler lets the collection being loaded finish and then stops.
    os.environ.setdefault("RUNTIME__INTERCEPT_SIGNALS", "false")
    # dlt logs through the first handler of its logger: ours, silent unless --debug.
    logging.getLogger("dlt").handlers = [LibraryLog(debug, secrets or [])]


@main.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--scale",
    default="small",
    show_default=True,
    callback=_scale,
    help="tiny, small, medium, large, events (a million tracking events), or N (N times small).",
)
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the data generator.")
@click.option(
    "--latency-ms",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Delay added to every request.",
)
@click.option(
    "--soap-latency-ms",
    type=click.FloatRange(0),
    default=None,
    help="Delay added to every SOAP request instead (default: --latency-ms).",
)
@click.option(
    "--soap-row-ms",
    type=click.FloatRange(0),
    default=0.0,
    show_default=True,
    help="Further delay for each row of a SOAP Retrieve page.",
)
@click.option(
    "--business-units",
    type=click.IntRange(1),
    default=1,
    show_default=True,
    help="Number of business units (MIDs), each with its own data.",
)
@click.option(
    "--token-ttl",
    type=click.IntRange(1),
    default=1079,
    show_default=True,
    help="Access token lifetime in seconds (expires_in).",
)
@click.option(
    "--scopes",
    callback=_scopes,
    help="Comma-separated scopes the package grants "
    "(default: all read scopes). Leave one out to get 403s.",
)
@click.option(
    "--client-id", default="", help="Client id to accept (default: derived from the seed)."
)
@click.option(
    "--client-secret", default="", help="Client secret to accept (default: derived from the seed)."
)
@click.option(
    "--rate-limit-every",
    type=click.IntRange(0),
    default=0,
    help="Throttle every Nth API request (REST 429 + Retry-After, SOAP HTTP 500).",
)
@click.option(
    "--retry-after",
    type=click.IntRange(0),
    default=1,
    show_default=True,
    help="Seconds in Retry-After of a 429.",
)
@click.option(
    "--server-error-every",
    type=click.IntRange(0),
    default=0,
    help="Answer every Mth API request with a server error.",
)
@click.option(
    "--reset-every",
    type=click.IntRange(0),
    default=0,
    help="Reset the connection of every Kth API request.",
)
@click.option(
    "--stall-every",
    type=click.IntRange(0),
    default=0,
    help="Hold every Nth API request for --stall-seconds before answering it.",
)
@click.option("--stall-seconds", type=click.FloatRange(0), default=30.0, show_default=True)
@click.option(
    "--malformed",
    multiple=True,
    callback=_malformed,
    metavar="RESOURCE:PAGE",
    help="Cut short the body of that page (campaigns, campaign_assets, interactions, List).",
)
@click.option(
    "--assets-envelope",
    type=click.Choice(["items", "entities", "list"]),
    default="items",
    show_default=True,
    help="Envelope key of campaign assets (the facts are uncertain).",
)
def emulator(
    port: int,
    scale: str,
    seed: int,
    business_units: int,
    token_ttl: int,
    scopes: tuple[str, ...],
    client_id: str,
    client_secret: str,
    assets_envelope: str,
    **faults: Any,
) -> None:
    """Serve the SFMC emulator on 127.0.0.1 and print the environment to point a sync at it."""
    config = EmulatorConfig(
        seed=seed,
        sizes=sizes_for(scale),
        business_units=business_units,
        client_id=client_id,
        client_secret=client_secret,
        token_ttl=token_ttl,
        scopes=scopes,
        faults=Faults(**faults),  # the fault options are named as Faults' fields
        rest=RestOptions(assets_envelope=assets_envelope),
    )
    _serve(config, port)


def _serve(config: EmulatorConfig, port: int) -> None:
    """Start the emulator, print its environment, and serve until SIGINT or SIGTERM."""
    started = time.perf_counter()
    server = Emulator(config, port)
    for name, value in server.environment().items():
        click.echo(f"export {name}={value}")
    sys.stdout.flush()
    mids = ", ".join(str(m) for m in config.mids)
    click.echo(
        f"SFMC emulator ready in {time.perf_counter() - started:.1f}s on {server.auth_url} "
        f"(business units {mids}); Ctrl-C stops it.",
        err=True,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        click.echo(f"served {counted(len(server.app.log.entries), 'request')}", err=True)


# The options that say which package and tenant to use, shared by sync and check.
CREDENTIAL_OPTIONS = [
    click.option(
        "--client-id",
        envvar="SFMC_CLIENT_ID",
        show_envvar=True,
        help="Installed package client id.",
    ),
    click.option(
        "--client-secret",
        envvar="SFMC_CLIENT_SECRET",
        show_envvar=True,
        help="Installed package client secret.",
    ),
    click.option(
        "--subdomain",
        envvar="SFMC_SUBDOMAIN",
        show_envvar=True,
        callback=checked(check_subdomain),
        help="Your tenant's 28-character subdomain (mc...), not a URL.",
    ),
    click.option(
        "--account-id",
        envvar="SFMC_ACCOUNT_ID",
        show_envvar=True,
        type=int,
        default=None,
        help="Business unit (MID); default: the package's own.",
    ),
    click.option(
        "--auth-url",
        envvar="SFMC_AUTH_URL",
        show_envvar=True,
        default=None,
        help="Default: https://{subdomain}.auth.marketingcloudapis.com",
    ),
]


def credential_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The credential options (``CREDENTIAL_OPTIONS``) on a command."""
    for option in reversed(CREDENTIAL_OPTIONS):
        command = option(command)
    return command


def _names(text: str | None) -> list[str] | None:
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _load_config(ctx: click.Context, param: click.Parameter, value: str | None) -> None:
    """Read a TOML file whose keys are the options of ``sync`` and ``run``; the command takes
    the keys it has as defaults, so flags and environment variables still win."""
    if not value:
        return
    known = [p.name for p in run.params if p.name and p.name != "config"]
    takes = [p.name for p in ctx.command.params if p.name]
    try:
        defaults(ctx, read_config(value, known, takes))
    except ConfigError as exc:
        raise click.UsageError(str(exc), ctx) from None


def config_option(help: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--config FILE`` (``SFMC_CONFIG``), read before the other options."""
    return click.option(
        "--config",
        envvar="SFMC_CONFIG",
        show_envvar=True,
        type=click.Path(dir_okay=False),
        is_eager=True,
        expose_value=False,
        callback=_load_config,
        help=help,
    )


def destination_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Where the syncs load, for the commands that read or check it."""
    options = [
        click.option(
            "--destination",
            envvar="SFMC_DESTINATION",
            show_envvar=True,
            default=DEFAULT_DESTINATION,
            show_default=True,
            help="duckdb:///path, postgresql://user:pass@host:port/db, "
            "or a dlt destination name configured through dlt.",
        ),
        click.option(
            "--schema",
            envvar="SFMC_SCHEMA",
            show_envvar=True,
            default="sfmc",
            show_default=True,
            help="Schema (dataset) the tables land in.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def sync_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options of one sync, shared by ``sync`` and ``run``."""
    options: list[Callable[[Any], Any]] = [
        config_option(
            "A TOML file with the same keys as these options (see example.toml); "
            "keys of `run` only (every, jitter) are left to it."
        ),
        destination_options,
        click.option(
            "--collections",
            default=None,
            metavar="A,B",
            help=f"Collections to sync (default all): {', '.join(COLLECTIONS)}.",
        ),
        click.option(
            "--full-refresh", is_flag=True, help="Re-read everything instead of what changed."
        ),
        credential_options,
        click.option(
            "--account-ids",
            envvar="SFMC_ACCOUNT_IDS",
            show_envvar=True,
            default=None,
            callback=checked(parse_account_ids),
            metavar="MID,MID",
            help="Business units to sync in one run, each with its own token "
            "(instead of --account-id).",
        ),
        click.option(
            "--backfill-days",
            envvar="SFMC_BACKFILL_DAYS",
            show_envvar=True,
            type=click.IntRange(1),
            default=730,
            show_default=True,
            help="How far back a first sync reads tracking events and sends (SFMC keeps 730).",
        ),
        click.option(
            "--email-bodies",
            envvar="SFMC_EMAIL_BODIES",
            show_envvar=True,
            is_flag=True,
            help="Also read each email's HTML and text body (emails.html_body, text_body).",
        ),
        click.option(
            "--system-offset",
            envvar="SFMC_SYSTEM_OFFSET",
            show_envvar=True,
            default="-06:00",
            callback=checked(parse_offset),
            show_default=True,
            help="UTC offset of timestamps SFMC sends without one (its system time).",
        ),
        click.option(
            "--concurrency",
            envvar="SFMC_CONCURRENCY",
            show_envvar=True,
            type=click.IntRange(1, 50),
            default=DEFAULT_CONCURRENCY,
            show_default=True,
            help="API requests in flight at once (campaign assets); halved on each 429.",
        ),
        click.option(
            "--log-format",
            type=click.Choice(["text", "json"]),
            default="text",
            show_default=True,
            help="json: one JSON object per event, with the run id.",
        ),
        click.option("-v", "--verbose", is_flag=True, help="Also log progress as pages arrive."),
        click.option("--debug", is_flag=True, help="Show tracebacks (secrets redacted)."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@main.command()
@sync_options
@click.pass_context
def sync(ctx: click.Context, /, collections: str | None, debug: bool, **settings: Any) -> None:
    """Sync SFMC collections into the destination, incrementally."""
    from sfmc_source.schedule import Stopper
    from sfmc_source.sync import run_sync_command

    secrets = _secrets(settings)
    configure_runtime(debug, secrets)
    with _reported(debug, secrets):
        options = _sync_settings(ctx, settings)
        stopper = Stopper().install()
        code = run_sync_command(collections=_names(collections), stop=stopper, **options)
    sys.exit(stopper.exit_code if stopper() else code)


def _sync_settings(ctx: click.Context, settings: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments of ``run_sync_command``: of related options the one given at
    the higher level, every value parsed."""
    chosen = settled(ctx, settings)
    chosen["account_ids"] = business_units(chosen["account_ids"], chosen.pop("account_id"))
    chosen["naive_zone"] = chosen.pop("system_offset")
    return chosen


@main.command()
@sync_options
@click.option("--every", required=True, help="Interval between syncs: 3h, 90m, 1h30m, ...")
@click.option(
    "--jitter",
    default="0s",
    show_default=True,
    help="Up to this much extra wait, drawn anew each time, e.g. 5m.",
)
@click.pass_context
def run(
    ctx: click.Context,
    /,
    collections: str | None,
    debug: bool,
    every: str,
    jitter: str,
    **settings: Any,
) -> None:
    """Sync now, then every interval, until SIGINT or SIGTERM. Never two syncs of a business
    unit into the same destination and schema at once; a signal during a sync stops its
    requests and loads what was read in full, between syncs at once."""
    from sfmc_source.schedule import Stopper, run_every
    from sfmc_source.sync import run_sync_command

    secrets = _secrets(settings)
    configure_runtime(debug, secrets)
    with _reported(debug, secrets):
        interval, spread = parse_interval(every), parse_jitter(jitter)
        options = _sync_settings(ctx, settings)
        warning = quota_warning(every, interval)
        if warning:
            click.echo(f"warning: {warning}", err=True)
        stopper = Stopper().install()

        def once(stop: Stopper) -> int:
            return run_sync_command(collections=_names(collections), stop=stop, **options)

        code = run_every(interval, spread, once, stopper)
    sys.exit(code)


def _secrets(settings: dict[str, Any]) -> list[str | None]:
    """What no output may show: the client secret and the destination's password."""
    from urllib.parse import unquote, urlsplit

    try:
        password = urlsplit(str(settings.get("destination") or "")).password
    except ValueError:
        password = None
    return [settings.get("client_secret"), unquote(password) if password else None]


@contextmanager
def _reported(debug: bool, secrets: list[str | None]) -> Iterator[None]:
    """Failures as one line on stderr with their exit code; tracebacks only with --debug,
    and even then with the secrets blanked out."""
    from sfmc_source.redaction import redact

    try:
        yield
    except Exception as exc:
        code = exc.exit_code if isinstance(exc, SfmcError) else 1
        if debug:
            click.echo(redact(traceback.format_exc(), secrets), err=True, nl=False)
        message = (
            str(exc)
            if isinstance(exc, SfmcError)
            else f"{type(exc).__name__}: {exc} (run with --debug for the traceback)"
        )
        _fail(redact(message, secrets), code)


@main.command()
def demo() -> None:
    """What `make demo` runs: a full and an incremental sync from the emulator, offline."""
    from sfmc_source.demo import run_demo

    configure_runtime(debug=False)
    sys.exit(run_demo())


@main.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of text.")
def collections(as_json: bool) -> None:
    """The collections: table, primary key, strategy, permission, columns and types."""
    if as_json:
        click.echo(json.dumps([_describe(c) for c in COLLECTIONS.values()], indent=2))
        return
    for collection in COLLECTIONS.values():
        click.echo(f"{collection.name}  (primary key: {', '.join(collection.table_key)})")
        click.echo(f"  source:      {collection.api}")
        click.echo(f"  incremental: {collection.strategy}")
        click.echo(f"  permission:  {collection.permission}")
        width = max(len(c.name) for c in collection.table_columns)
        for column in collection.table_columns:
            only = f"  (with --{column.option.replace('_', '-')})" if column.option else ""
            click.echo(f"    {column.name:<{width}}  {column.type:<9}  ← {column.source}{only}")
        click.echo()


def _describe(collection: Collection) -> dict[str, Any]:
    return {
        "name": collection.name,
        "primary_key": list(collection.table_key),
        "source": collection.api,
        "incremental": collection.strategy,
        "permission": collection.permission,
        "columns": [
            {"name": c.name, "type": c.type, "source": c.source, "option": c.option}
            for c in collection.table_columns
        ],
    }


@main.command()
@config_option("A TOML file of sync's settings (see example.toml); check takes the credentials.")
@credential_options
@destination_options
@click.option(
    "--collections",
    default=None,
    metavar="A,B",
    help="Check only the permissions these collections need (default: all).",
)
@click.option("--debug", is_flag=True, help="Show tracebacks (secrets redacted).")
@click.pass_context
def check(
    ctx: click.Context,
    /,
    debug: bool,
    destination: str,
    schema: str,
    collections: str | None,
    **settings: Any,
) -> None:
    """Check the credentials, each permission the collections need, and that the destination
    is reachable and writable; exit 0 only if all are ok."""
    from sfmc_source.check import check_destination, exit_code, run_check
    from sfmc_source.client import SfmcClient, credentials_from
    from sfmc_source.destination import Warehouse, schema_name

    with _reported(debug, _secrets({**settings, "destination": destination})):
        warehouse, schema = Warehouse.parse(destination), schema_name(schema)
        names = _names(collections)
        with SfmcClient(credentials_from(**settled(ctx, settings))) as client:
            findings = run_check(client, names)
        findings.append(check_destination(warehouse, schema))
    width = max(len(f.what) for f in findings)
    for finding in findings:
        mark = "ok     " if finding.ok else "FAILED "
        click.echo(f"{mark}{finding.what:<{width}}  {finding.detail}")
    sys.exit(exit_code(findings))


@main.command()
@config_option(
    "A TOML file of sync's settings (see example.toml); status takes destination and schema."
)
@destination_options
@click.option("--json", "as_json", is_flag=True, help="One JSON document instead of a table.")
def status(destination: str, schema: str, as_json: bool) -> None:
    """The latest run of each collection: outcome, rows, requests, duration, cursor.
    Exit 0 when every latest run succeeded."""
    from sfmc_source.destination import Warehouse, schema_name
    from sfmc_source.history import latest_runs
    from sfmc_source.redaction import redact

    configure_runtime(debug=False)
    secrets = _secrets({"destination": destination})
    try:
        warehouse, schema = Warehouse.parse(destination), schema_name(schema)
        runs = latest_runs(warehouse, schema)
    except SfmcError as exc:
        _fail(redact(str(exc), secrets), exc.exit_code)
    except Exception as exc:
        message = f"cannot read the run history of {warehouse.display}: {root_cause(exc)}"
        _fail(redact(message, secrets), 1)
    if as_json:
        click.echo(json.dumps(runs, indent=2, default=str))
    elif not runs:
        click.echo(f"no sync has run against {warehouse.display} schema {schema} yet")
    several = len({run["business_unit_id"] for run in runs}) > 1
    for run in [] if as_json else runs:
        seconds = (run["finished"] - run["started"]).total_seconds()
        cursor = run["cursor"] or "-"
        name = f"{run['collection']}@{run['business_unit_id']}" if several else run["collection"]
        click.echo(
            f"{name:<16} {run['outcome']:<7} {run['finished']:%Y-%m-%d %H:%M:%S}Z "
            f"{run['rows']:>8} {plural(run['rows'], 'row'):<4} "
            f"{run['requests']:>6} {plural(run['requests'], 'request'):<8} "
            f"{seconds:>7.1f}s  cursor {cursor}"
        )
        if run["error"]:
            click.echo(f"{'':<16} {run['error']}")
    sys.exit(0 if runs and all(r["outcome"] == "ok" for r in runs) else 1)
