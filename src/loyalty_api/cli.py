"""The `loyalty-api` command: serve, migrate, keys, demo, openapi, graphql-schema, event-types."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import sys
import tempfile
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, suppress
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pydantic import SecretStr, ValidationError
from sqlalchemy import make_url

from loyalty_api import crypto
from loyalty_api.auth import keys as key_tokens
from loyalty_api.auth import service as auth_service
from loyalty_api.auth.networks import parse_network
from loyalty_api.auth.principal import Principal, Scope
from loyalty_api.clock import SystemClock, format_instant
from loyalty_api.db import migrations
from loyalty_api.db.engine import Database, engine_for
from loyalty_api.db.invalidation import invalidations
from loyalty_api.db.notifications import why_not_listening
from loyalty_api.db.uow import UnitsOfWork
from loyalty_api.errors import LoyaltyError
from loyalty_api.keys import host as host_keys
from loyalty_api.ops.collector import tune_for_serving
from loyalty_api.ops.logging import configure_logging
from loyalty_api.ops.metrics import MULTIPROCESS_DIR
from loyalty_api.settings import Settings, is_in_memory, unknown_variables, variable

DEMO_STATE_FILE = Path(".loyalty-demo.json")

T = TypeVar("T")


def _fail(message: str) -> NoReturn:
    print(f"loyalty-api: {message}", file=sys.stderr)
    raise SystemExit(2)


def _refuse_settings(exc: ValidationError) -> NoReturn:
    """Settings the environment holds that the service cannot run with: one line each, by variable."""
    from loyalty_api.http.problems import plain_message

    *others, last = [
        f"{variable(str(e['loc'][0]))}: {plain_message(e['msg'])}" if e["loc"] else plain_message(e["msg"])
        for e in exc.errors()
    ]
    for line in others:
        print(f"loyalty-api: {line}", file=sys.stderr)
    _fail(last)


def _warn_of_unknown_variables() -> None:
    """Nothing reads a misspelt setting: say so, since the service would run on without it."""
    for name, meant in unknown_variables(os.environ).items():
        hint = f" (did you mean {meant}?)" if meant else ""
        print(f"loyalty-api: warning: {name} is not a setting{hint}; it is ignored", file=sys.stderr)


def _require_key(settings: Settings) -> Settings:
    if settings.encryption_key is None:
        if _demo_key_kept():
            # Only `serve --demo` and `demo` read the file: another command taking the demo's key on its own
            # could encrypt a real programme's members with it, should someone once have tried the demo there.
            _fail(
                f"LOYALTY_ENCRYPTION_KEY is not set. The demo's is in {DEMO_STATE_FILE}: to run this command "
                "on the demo's database, export it first, as in `export LOYALTY_ENCRYPTION_KEY=$(python3 -c "
                f'\'import json; print(json.load(open("{DEMO_STATE_FILE}"))["encryption_key"])\')`'
            )
        _fail(
            "LOYALTY_ENCRYPTION_KEY is not set. Personal data is encrypted with it: create one with "
            "`loyalty-api encryption-key`, keep it safe, and export it. (`serve --demo` makes a local one.)"
        )
    return settings


def _demo_key_kept() -> bool:
    """Whether this folder has the demo's state file with its encryption key (a damaged one has none)."""
    try:
        state = json.loads(DEMO_STATE_FILE.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return False
    return isinstance(state, dict) and isinstance(state.get("encryption_key"), str)


@asynccontextmanager
async def _units(settings: Settings) -> AsyncIterator[UnitsOfWork]:
    _require_key(settings)
    assert settings.encryption_key is not None
    database = Database(engine_for(settings))
    try:
        yield UnitsOfWork(
            database, SystemClock(), crypto.Vault(settings.encryption_key.get_secret_value()), settings
        )
    finally:
        await database.dispose()


async def _migrate(settings: Settings) -> None:
    engine = engine_for(settings)
    try:
        await migrations.upgrade(engine)
    finally:
        await engine.dispose()


async def _schema_status(
    settings: Settings, url: str | None = None, setting: str = "LOYALTY_DATABASE_URL"
) -> migrations.SchemaStatus:
    """The schema of the database (or the one at `url`, which `setting` names). An SQLite database in memory
    is refused: each connection would open a new, empty one, so nothing migrated or written would be seen
    again."""
    if is_in_memory(url or settings.database_url):
        _fail(
            f"{setting}: an SQLite database in memory is gone with each connection: name a file, such as "
            "sqlite:///./loyalty.db"
        )
    engine = engine_for(settings, url)
    try:
        return await migrations.schema_status(engine)
    finally:
        await engine.dispose()


def _newer(status: migrations.SchemaStatus) -> str:
    return f"the database is at {status.revision}, newer than this release (at {status.expected})"


def _warn_if_newer(status: migrations.SchemaStatus) -> None:
    """A newer release migrated the database: a rolling upgrade's older processes, or a rollback, run on it
    (each release's migrations leave a schema the release before runs on). Said once, at start."""
    if status.ahead:
        print(
            f"loyalty-api: warning: {_newer(status)}: running on it, as during a rolling upgrade",
            file=sys.stderr,
        )


def _refuse_unreachable(status: migrations.SchemaStatus, database: str = "database") -> None:
    if not status.reachable:
        _fail(f"{database} unreachable: {status.problem}")


def _refuse_unless_ready(status: migrations.SchemaStatus) -> None:
    """One line, where the command's first statement would fail with a traceback (a column missing) or, for
    the worker, every job would log errors forever."""
    _refuse_unreachable(status)
    if status.behind:
        _fail(f"database {_at(status)}, this release needs {status.expected}: run `loyalty-api migrate`")


def _at(status: migrations.SchemaStatus) -> str:
    return "has no migrations" if status.revision is None else f"at {status.revision}"


def _refuse_unless_reports_ready(settings: Settings) -> None:
    """The reports' replica answers and has caught up with the migrations: else every report would fail as
    a bug while /readyz, which asks the primary, says ready."""
    if settings.reports_database_url is None:
        return
    status = _run(_schema_status(settings, settings.reports_database_url, "LOYALTY_REPORTS_DATABASE_URL"))
    database = "reports database (LOYALTY_REPORTS_DATABASE_URL)"
    _refuse_unreachable(status, database)
    if status.behind:
        _fail(
            f"{database} {_at(status)}, this release needs {status.expected}: it should be a replica of "
            "LOYALTY_DATABASE_URL, caught up with it"
        )


def _refuse_unless_listening(settings: Settings) -> None:
    """Where LOYALTY_LISTEN_DATABASE_URL names another database than LOYALTY_DATABASE_URL, it answers: its
    listener would otherwise only warn, once a second, while a key revoked in another process kept working
    for the cache's lifetime and webhooks waited for the worker's next look."""
    if settings.listen_database_url is None or settings.is_sqlite:
        return
    problem = _run(why_not_listening(settings.listen_database_url))
    if problem is not None:
        _fail(f"listening database (LOYALTY_LISTEN_DATABASE_URL) unreachable: {problem}")


def _require_schema(settings: Settings) -> None:
    """Before a command works on the database: it answers, and its schema is this release's (or a newer
    release's, with a warning)."""
    status = _run(_schema_status(settings))
    _refuse_unless_ready(status)
    _warn_if_newer(status)


def _refuse_another_key(settings: Settings) -> None:
    """On a database with encrypted values (personal data, webhook secrets, partners' pooled codes, recorded
    replies), LOYALTY_ENCRYPTION_KEY is the key that encrypted them: another (a new key made where the
    backed-up one was meant) would have every member read fail, every lookup miss, every webhook fail to be
    signed."""
    from loyalty_api.key_check import what_the_key_does_not_open

    async def unopened() -> str | None:
        async with _units(settings) as units, units.read() as uow:
            return await what_the_key_does_not_open(uow)

    what = _run(unopened())
    if what is not None:
        _fail(
            f"LOYALTY_ENCRYPTION_KEY does not open {what} in the database, which another key "
            "encrypted: set the key it was made with (from your backup)"
        )


def _migrate_schema(settings: Settings) -> migrations.SchemaStatus:
    """Upgrade the database to this release's latest migration; one a newer release migrated is left as it is
    (this release cannot place its revision). The status found before."""
    status = _run(_schema_status(settings))
    _refuse_unreachable(status)
    if not status.ahead:
        _run(_migrate(settings))
    return status


def _read_demo_state(settings: Settings) -> dict[str, object]:
    """The demo's state as an earlier run left it; one line, not a traceback, where a crash cut it short as it
    was written or a hand edited it."""
    try:
        state = json.loads(DEMO_STATE_FILE.read_text(encoding="utf-8"))
        if not isinstance(state, dict):
            raise ValueError("not a JSON object")
        if "encryption_key" in state:
            if not isinstance(state["encryption_key"], str):
                raise ValueError("its encryption_key is not a string")
            crypto.check_key(state["encryption_key"])
    except (ValueError, OSError) as exc:  # JSONDecodeError and InvalidEncryptionKey are ValueErrors
        database = make_url(settings.database_url).database if settings.is_sqlite else None
        _fail(
            f"{DEMO_STATE_FILE} is damaged ({exc}): delete it, and {database or 'the database it seeded'}, "
            "to start the demo afresh"
        )
    return state


def _demo_state(settings: Settings) -> tuple[Settings, dict[str, object]]:
    """The demo's local encryption key and API keys, kept beside the database so a restart reuses them."""
    state = _read_demo_state(settings) if DEMO_STATE_FILE.exists() else {}
    if settings.encryption_key is None:
        if "encryption_key" not in state:
            state["encryption_key"] = crypto.generate_key()
            # Stored now, before the seeding encrypts anything with it: a run stopped before the end (Ctrl-C
            # in the seconds it seeds, a full disk) would otherwise lose the key to the members it enrolled.
            _write_demo_state(state)
            print(
                f"demo: generated an encryption key for personal data and stored it in {DEMO_STATE_FILE} "
                "(set LOYALTY_ENCRYPTION_KEY in production instead)",
                file=sys.stderr,
            )
        settings = settings.model_copy(update={"encryption_key": SecretStr(str(state["encryption_key"]))})
    # The demo is for trying the API: GraphiQL and introspection on, unless the environment says otherwise.
    explorer = {"graphql_introspection", "graphql_ide"} - settings.model_fields_set
    return settings.model_copy(update=dict.fromkeys(explorer, True)), state


async def _seed(settings: Settings, state: dict[str, object]) -> dict[str, str]:
    from loyalty_api.demo.seed import create_demo_keys, demo_keys_in_force, seed_programme

    async with _units(settings) as units:
        await seed_programme(units)
        remembered = state.get("api_keys")
        if isinstance(remembered, dict) and await demo_keys_in_force(units, remembered):
            return {str(k): str(v) for k, v in remembered.items()}
        if remembered is not None:
            print(
                f"demo: the keys in {DEMO_STATE_FILE} are not in this database: made new ones",
                file=sys.stderr,
            )
        return await create_demo_keys(units)


def _seed_demo(settings: Settings, state: dict[str, object]) -> dict[str, str]:
    keys = _run(_seed(settings, state))
    state["api_keys"] = keys
    _write_demo_state(state)
    return keys


def _write_demo_state(state: dict[str, object]) -> None:
    """Replace the demo's state file at once, never readable by others and never half written. It holds the
    encryption key and API keys: written then chmod-ed, a crash in between left them readable by every user;
    written over in place, anyone who had the old file open read the new keys, and a full disk left a
    truncated file the next start refuses. A temporary file beside it (mkstemp makes it 0600 whatever the
    umask), synced, then renamed over it: the old file or the new one, whole, at every moment."""
    folder = DEMO_STATE_FILE.parent
    handle, temporary = tempfile.mkstemp(prefix=f"{DEMO_STATE_FILE.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as written:
            written.write(json.dumps(state, indent=2))
            written.flush()
            os.fsync(written.fileno())
        os.replace(temporary, DEMO_STATE_FILE)
    except OSError as exc:
        Path(temporary).unlink(missing_ok=True)
        _fail(
            f"cannot write {DEMO_STATE_FILE} ({exc.strerror or exc}): free some space and run the demo again"
        )
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    # The rename is durable once the folder is: else a power cut could bring back the old file.
    directory = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _print_demo_keys(keys: dict[str, str], host: str, port: int) -> None:
    print("\nloyalty-api demo is ready.", file=sys.stderr)
    print(f"  API docs:  http://{host}:{port}/docs", file=sys.stderr)
    print(f"  GraphiQL:  http://{host}:{port}/graphql", file=sys.stderr)
    print("  Demo API keys (send as `Authorization: Bearer <key>`):", file=sys.stderr)
    for scope, token in keys.items():
        print(f"    {scope:<10} {token}", file=sys.stderr)
    print(file=sys.stderr)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    settings = Settings()
    configure_logging(settings.log_level)
    if args.workers > 1 and settings.is_sqlite:
        _fail(
            "--workers needs PostgreSQL (LOYALTY_DATABASE_URL): SQLite takes one writer at a time, and on "
            "SQLite `serve` runs the worker inside its one process. Serve SQLite with one process."
        )
    _require_free_port(args.host, args.port)
    state: dict[str, object] = {}
    if args.demo:
        settings, state = _demo_state(settings)
    _require_key(settings)
    # Once, here, before any API process starts: they would race each other to migrate and seed.
    if settings.is_sqlite or args.demo:
        status = _migrate_schema(settings)
    else:
        _refuse_unless_ready(status := _run(_schema_status(settings)))
    _warn_if_newer(status)
    _refuse_another_key(settings)
    _refuse_unless_reports_ready(settings)
    _refuse_unless_listening(settings)
    if args.demo:
        keys = _seed_demo(settings, state)
        _print_demo_keys(keys, args.host, args.port)
    if args.workers > 1:
        # uvicorn starts the processes, and each builds its app from the environment (app.serving_app).
        _export_to_processes(settings)
        # A fresh folder: counters left there by an earlier run would be added to this one's.
        with tempfile.TemporaryDirectory(prefix="loyalty-metrics-") as metrics_folder:
            os.environ[MULTIPROCESS_DIR] = metrics_folder
            uvicorn.run(
                "loyalty_api.app:serving_app",
                factory=True,
                workers=args.workers,
                host=args.host,
                port=args.port,
                log_config=None,
                access_log=False,
            )
        return
    # The app imported only now, its checks passed: a `serve` that cannot start says so a second sooner.
    from loyalty_api.app import create_app

    # With SQLite there is one process and one file: the worker runs inside it. With PostgreSQL run
    # `loyalty-api worker` beside the API processes.
    app = create_app(settings, with_worker=settings.is_sqlite)
    tune_for_serving()
    uvicorn.run(app, host=args.host, port=args.port, workers=1, log_config=None, access_log=False)


def _require_free_port(host: str, port: int) -> None:
    """Before anything is set up or printed: a server already listening there would have the demo's keys
    shown for a service that then stops at once."""
    if port == 0:
        return
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            probe.bind(address)
    except socket.gaierror as exc:  # the host's name: no other port would help
        _fail(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}): "
            "name this machine or one of its addresses with --host"
        )
    except OSError as exc:
        _fail(f"cannot listen on {host}:{port} ({exc.strerror or exc}): serve on another with --port")


def _export_to_processes(settings: Settings) -> None:
    """What `--demo` changed in these settings, for the API processes to read from the environment."""
    assert settings.encryption_key is not None
    os.environ["LOYALTY_ENCRYPTION_KEY"] = settings.encryption_key.get_secret_value()
    os.environ["LOYALTY_GRAPHQL_INTROSPECTION"] = str(settings.graphql_introspection).lower()
    os.environ["LOYALTY_GRAPHQL_IDE"] = str(settings.graphql_ide).lower()


def _partner(value: str) -> uuid.UUID | str:
    """A partner's id when the value reads as one, else its code."""
    try:
        return uuid.UUID(value)
    except ValueError:
        return value


def _port(value: str) -> int:
    # The socket takes a port modulo 65536: 70000 would listen on 4464 without a word.
    if not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError("a port is a number from 0 to 65535")
    return int(value)


def _process_count(value: str) -> int:
    if not value.isdigit() or not 1 <= int(value) <= 256:
        raise argparse.ArgumentTypeError("a number of processes from 1 to 256")
    return int(value)


def cmd_worker(_: argparse.Namespace) -> None:
    from loyalty_api.worker.runner import Worker

    settings = _require_key(Settings())
    configure_logging(settings.log_level)
    _require_schema(settings)
    _refuse_another_key(settings)
    _refuse_unless_listening(settings)
    tune_for_serving()

    async def run() -> None:
        async with _units(settings) as units, invalidations(settings, units.cache):
            worker = Worker(units)
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(signum, worker.stop)
            await worker.run()

    _run(run())


def cmd_jobs(args: argparse.Namespace) -> None:
    """Run one job until it has nothing left to do, then print how many items it handled and how long it
    took."""
    from loyalty_api.worker.schedule import ALL_JOBS

    settings = _require_key(Settings())
    _require_schema(settings)
    _refuse_another_key(settings)
    job = next(j for j in ALL_JOBS if j.name == args.job)

    async def run() -> tuple[int, float]:
        total = 0
        async with _units(settings) as units:
            started = time.perf_counter()
            while done := await job.run(units):
                total += done
            return total, time.perf_counter() - started

    handled, seconds = _run(run())
    print(f"{job.name}: {handled} in {seconds:.2f} s")


def cmd_migrate(_: argparse.Namespace) -> None:
    settings = Settings()
    if (status := _migrate_schema(settings)).ahead:
        # A rollback: the older release's processes run on it as they are; its migrate has nothing to do.
        print(f"{_newer(status)}: nothing to migrate")
        return
    print(f"migrated to {migrations.head_revision()}")


def cmd_demo(_: argparse.Namespace) -> None:
    settings, state = _demo_state(Settings())
    _warn_if_newer(_migrate_schema(settings))
    _refuse_another_key(settings)  # as `serve --demo` does: seeding and keys under it would open nothing
    keys = _seed_demo(settings, state)
    for scope, token in keys.items():
        print(f"{scope}\t{token}")


def _run_or_fail(work: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run `work`; a refusal is printed as the error it is."""
    try:
        return _run(work())
    except LoyaltyError as exc:
        _fail(exc.detail)


def _show_once(heading: str, token: str) -> None:
    """Print a new API key alone on the last line: scripts take it from there."""
    print(heading)
    print(token)


# Control characters, as the API refuses them in every string (loyalty_api.http.input_guard).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _name(value: str) -> str:
    """A name people read on screens (a key's, a tier's): as the API takes names."""
    if not 1 <= len(value) <= 100 or _CONTROL.search(value):
        raise argparse.ArgumentTypeError("a name is 1 to 100 characters, without control characters")
    return value


def _key_name(value: str) -> str:
    """A key's name as the API takes it (keys.schemas.KeyName): trimmed, so " Till 9 " is the key the API
    would call "Till 9" and a blank name is refused."""
    return _name(value.strip())


def cmd_init(args: argparse.Namespace) -> None:
    from pydantic import ValidationError

    from loyalty_api.first_setup import set_up
    from loyalty_api.http.problems import plain_message
    from loyalty_api.program.schemas import ProgramWrite

    try:
        programme = ProgramWrite(
            currency=args.currency,
            timezone=args.timezone,
            earn_rate=args.earn_rate,
            point_value_minor=args.point_value,
            rounding="down",
            expiry_months=args.expiry_months or None,
            min_redeem_points=1,
            max_redeem_share="1",
        ).settings()
    except ValidationError as exc:
        _fail("; ".join(f"{'.'.join(map(str, e['loc']))}: {plain_message(e['msg'])}" for e in exc.errors()))
    settings = _require_key(Settings())
    _warn_if_newer(_migrate_schema(settings))

    async def run() -> str:
        async with _units(settings) as units, units.begin() as uow:
            issued = await set_up(uow, programme, entry_tier=args.entry_tier, operator=args.key_name)
            await host_keys.record_made(uow, issued.principal)
            return issued.token

    token = _run_or_fail(run)
    _show_once(
        f"set up a programme in {programme.currency} ({programme.timezone}), with the entry tier "
        f"{args.entry_tier!r}; the admin key {args.key_name!r} is shown only once:",
        token,
    )


def cmd_encryption_key(_: argparse.Namespace) -> None:
    print(crypto.generate_key())


# Durations as the keys commands take them: `90d`, `12h`, `30m`.
_DURATION = re.compile(r"([0-9]{1,7})([mhd])")
_UNITS = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1)}
# Longer than any key should live, and far from where date arithmetic overflows.
_LONGEST = timedelta(days=3650)


def _duration(value: str) -> timedelta:
    """A duration such as `90d`, `12h` or `30m`; `0` is none at all."""
    match = _DURATION.fullmatch(value)
    if value != "0" and match is None:
        raise argparse.ArgumentTypeError(
            "a duration is a whole number and m, h or d, such as 90d, 12h or 30m"
        )
    length = timedelta(0) if match is None else int(match[1]) * _UNITS[match[2]]
    if length > _LONGEST:
        raise argparse.ArgumentTypeError("a duration is at most 3650d")
    return length


def _lifetime(value: str) -> timedelta:
    length = _duration(value)
    if not length:
        raise argparse.ArgumentTypeError("a key's lifetime is longer than 0, such as 90d")
    return length


def _network(value: str) -> str:
    try:
        return str(parse_network(value))
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _limits(principal: Principal) -> str:
    """What limits a new key beyond its scopes, for the line printed above it."""
    limits = ""
    if principal.expires_at is not None:
        limits += f", expiring at {format_instant(principal.expires_at)}"
    if principal.networks is not None:
        limits += f", usable from {', '.join(map(str, principal.networks))} only"
    return limits


def cmd_keys_create(args: argparse.Namespace) -> None:
    settings = _require_key(Settings())
    _require_schema(settings)

    async def run() -> auth_service.IssuedKey:
        from loyalty_api.keys import service as keys_service

        async with _units(settings) as units, units.begin() as uow:
            issued = await keys_service.create_key(
                uow,
                name=args.name,
                scopes=[Scope(s) for s in args.scope],
                partner=args.partner,
                rate_limit=args.rate,
                lifetime=args.expires_in,
                allowed_networks=args.allowed_networks,
                maker=None,
            )
            await host_keys.record_made(uow, issued.principal)
            return issued

    issued = _run_or_fail(run)
    scopes = ", ".join(sorted(set(args.scope)))
    heading = f"created key {args.name!r} with scopes {scopes}{_limits(issued.principal)}"
    _show_once(f"{heading}; it is shown only once:", issued.token)


def _key_prefix(named: str) -> str:
    """The key an operator names: by its prefix as `keys list` shows it, by the start of its token (`lk_` and
    the prefix), or by the whole token, a leaked key pasted as it was found. Read otherwise, the last two
    answered "no active API key" and left the key working."""
    parts = key_tokens.parse(named)
    return parts.prefix if parts is not None else named.removeprefix("lk_")


def cmd_keys_rotate(args: argparse.Namespace) -> None:
    settings = _require_key(Settings())
    _require_schema(settings)

    async def run() -> auth_service.Rotation:
        async with _units(settings) as units, units.begin() as uow:
            rotation = await auth_service.rotate_key(
                uow, prefix=args.prefix, overlap=args.overlap, lifetime=args.expires_in
            )
            new = rotation.issued.principal
            ends = format_instant(rotation.old_key_ends_at)
            await host_keys.record(
                uow, "keys_rotate", args.prefix, {"expires_at": ends, "replaced_by": new.key_prefix}
            )
            await host_keys.record_made(uow, new)
            return rotation

    rotation = _run_or_fail(run)
    new = rotation.issued.principal
    _show_once(
        f"rotated key {new.name!r}: {args.prefix} expires at {format_instant(rotation.old_key_ends_at)}; "
        f"the new key {new.key_prefix}{_limits(new)} is shown only once:",
        rotation.issued.token,
    )


def _instant_or_never(at: datetime | None) -> str:
    return "never" if at is None else format_instant(at)


_LIST_COLUMNS = (
    "prefix",
    "name",
    "scopes",
    "partner",
    "rate",
    "created",
    "expires",
    "last_used",
    "networks",
    "status",
)


def cmd_keys_list(_: argparse.Namespace) -> None:
    settings = _require_key(Settings())
    _require_schema(settings)

    async def run() -> list[auth_service.KeySummary]:
        async with _units(settings) as units, units.read() as uow:
            return await auth_service.list_keys(uow)

    summaries = _run(run())
    print("\t".join(_LIST_COLUMNS))
    for summary in summaries:
        p = summary.principal
        cells = (
            p.key_prefix,
            p.name,
            ",".join(sorted(p.scopes)),
            str(p.partner_id or "-"),
            p.rate_limit or "default",
            format_instant(summary.created_at),
            _instant_or_never(p.expires_at),
            _instant_or_never(summary.last_used_at),
            "any" if p.networks is None else ",".join(map(str, p.networks)),
            summary.status,
        )
        print("\t".join(cells))


def cmd_keys_revoke(args: argparse.Namespace) -> None:
    settings = _require_key(Settings())
    _require_schema(settings)

    async def run() -> None:
        async with _units(settings) as units, units.begin() as uow:
            await auth_service.revoke_key(uow, prefix=args.prefix)
            await host_keys.record(uow, "keys_revoke", args.prefix, {"status": "revoked"})

    _run_or_fail(run)
    print(f"revoked {args.prefix}")


def _write(text: str, output: str | None) -> None:
    """A generated document, to the file named or to stdout."""
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:  # a folder missing, a folder named, no permission
            _fail(f"cannot write {output}: {exc.strerror or exc}")
    else:
        sys.stdout.write(text)


def cmd_openapi(args: argparse.Namespace) -> None:
    from loyalty_api.app import openapi_document

    _write(openapi_document(), args.output)


def cmd_graphql_schema(args: argparse.Namespace) -> None:
    from loyalty_api.graphql.sdl import subgraph_sdl

    _write(subgraph_sdl(), args.output)


def cmd_event_types(args: argparse.Namespace) -> None:
    from loyalty_api.webhooks.catalogue import event_types_document

    _write(event_types_document(), args.output)


def cmd_scopes(_: argparse.Namespace) -> None:
    from loyalty_api.app import scopes_table
    from loyalty_api.openapi.authorization import UndeclaredAccess

    try:
        sys.stdout.write(scopes_table())
    except UndeclaredAccess as exc:
        _fail(str(exc))


class _JobNames:
    """The names `jobs` takes, read from the schedule only when `jobs` is parsed or its help shown: importing
    every job's module would add half a second to every other command."""

    def _names(self) -> list[str]:
        from loyalty_api.worker.schedule import ALL_JOBS

        return [job.name for job in ALL_JOBS]

    def __contains__(self, name: object) -> bool:
        return name in self._names()

    def __iter__(self) -> Iterator[str]:
        return iter(self._names())


class _WholeNames(argparse.HelpFormatter):
    """Help wrapped between words only: a job's name is not split at its hyphens. (argparse documents only
    the formatter classes' names; `_split_lines` is the method its own RawTextHelpFormatter overrides.)"""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loyalty-api", description="Membership and loyalty service")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (migrates an SQLite database first)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed a demo programme and print demo API keys")
    serve.add_argument(
        "--workers",
        type=_process_count,
        default=1,
        metavar="N",
        help="API processes sharing the port (1); more than one needs PostgreSQL",
    )
    serve.set_defaults(run=cmd_serve)

    commands.add_parser("migrate", help="upgrade the database to the latest migration").set_defaults(
        run=cmd_migrate
    )
    commands.add_parser("worker", help="run the scheduled jobs until stopped").set_defaults(run=cmd_worker)
    jobs = commands.add_parser(
        "jobs", help="run one scheduled job now, until it has nothing left to do", formatter_class=_WholeNames
    )
    jobs.add_argument("job", metavar="JOB", choices=_JobNames(), help="the job to run, one of: %(choices)s")
    jobs.set_defaults(run=cmd_jobs)
    commands.add_parser("demo", help="seed the demo programme and print its API keys").set_defaults(
        run=cmd_demo
    )
    init = commands.add_parser(
        "init",
        help="migrate an empty database and set up a programme: its settings, an entry tier and an admin key",
    )
    init.add_argument("--currency", required=True, help="ISO 4217 code, e.g. CNY")
    init.add_argument(
        "--timezone", required=True, help="where the programme's days begin, e.g. Asia/Shanghai"
    )
    init.add_argument("--earn-rate", default="1", help="points per major currency unit spent (1)")
    init.add_argument(
        "--point-value", default="1", help="minor currency units a point is worth when redeemed (1)"
    )
    init.add_argument(
        "--expiry-months", type=int, default=12, help="points expire this many months after earning; 0: never"
    )
    init.add_argument(
        "--entry-tier", type=_name, default="Member", help="the name of the tier every member starts on"
    )
    init.add_argument(
        "--key-name", type=_key_name, default="Operator", help="the name of the admin key it prints"
    )
    init.set_defaults(run=cmd_init)
    commands.add_parser("encryption-key", help="print a new LOYALTY_ENCRYPTION_KEY").set_defaults(
        run=cmd_encryption_key
    )
    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.add_argument("--output", help="write to this file instead of stdout")
    openapi.set_defaults(run=cmd_openapi)
    graphql_schema = commands.add_parser(
        "graphql-schema", help="print the GraphQL subgraph's SDL (what `_service { sdl }` answers)"
    )
    graphql_schema.add_argument("--output", help="write to this file instead of stdout")
    graphql_schema.set_defaults(run=cmd_graphql_schema)
    event_types = commands.add_parser(
        "event-types", help="print every webhook event type with the JSON schema of its payload"
    )
    event_types.add_argument("--output", help="write to this file instead of stdout")
    event_types.set_defaults(run=cmd_event_types)
    commands.add_parser(
        "scopes", help="print who may call what: each route and the key scopes it takes (Markdown)"
    ).set_defaults(run=cmd_scopes)

    keys = commands.add_parser("keys", help="manage API keys").add_subparsers(
        dest="keys_command", required=True
    )
    create = keys.add_parser("create", help="create a key; prints it alone on the last line")
    create.add_argument("--name", type=_key_name, required=True)
    create.add_argument("--scope", action="append", required=True, choices=[s.value for s in Scope])
    create.add_argument(
        "--partner", type=_partner, help="the partner a `partner` key acts for: its code, or its id"
    )
    create.add_argument(
        "--rate", help="this key's own rate limit, e.g. \"500/second\" (default: its scopes' setting)"
    )
    create.add_argument(
        "--expires-in",
        type=_lifetime,
        metavar="DURATION",
        help="the key stops working this long from now: 90d, 12h, 30m (default: never)",
    )
    create.add_argument(
        "--allow-network",
        dest="allowed_networks",
        action="append",
        type=_network,
        metavar="CIDR",
        help="a client network the key may be used from, e.g. 10.0.0.0/8; repeat for more (default: any)",
    )
    create.set_defaults(run=cmd_keys_create)
    rotate = keys.add_parser(
        "rotate",
        help="replace a key with a new one (same name, scopes, partner, rate and networks); prints it alone "
        "on the last line, and the old key keeps working for the overlap",
    )
    rotate.add_argument("prefix", type=_key_prefix, help="the key: its prefix, or its token")
    rotate.add_argument(
        "--overlap",
        type=_duration,
        required=True,
        metavar="DURATION",
        help="how long the old key keeps working, e.g. 24h; 0 ends it now (API processes notice at once on "
        "PostgreSQL, within LOYALTY_CACHE_SECONDS on SQLite; never past its own expiry)",
    )
    rotate.add_argument(
        "--expires-in",
        type=_lifetime,
        metavar="DURATION",
        help="the new key stops working this long from now (default: the old key's lifetime, or never)",
    )
    rotate.set_defaults(run=cmd_keys_rotate)
    keys.add_parser(
        "list", help="list keys with their limits, last use and status (never their secrets)"
    ).set_defaults(run=cmd_keys_list)
    revoke = keys.add_parser("revoke", help="revoke a key by its prefix")
    revoke.add_argument("prefix", type=_key_prefix, help="the key: its prefix, or its token")
    revoke.set_defaults(run=cmd_keys_revoke)
    return parser


# Arguments that name a file: any bytes the file system takes, UTF-8 or not.
_PATHS = frozenset({"output"})


def _refuse_text_not_in_utf8(args: argparse.Namespace) -> None:
    """Python reads arguments as UTF-8 and keeps the bytes that are not as lone surrogates, which neither the
    database nor a host name lookup takes: a name written in another encoding (a script saved as GBK or
    Latin-1, run in a UTF-8 locale) failed halfway through the command with a traceback. Refused first, in one
    line, showing the bytes that are not UTF-8."""
    for dest, value in vars(args).items():
        for text in value if isinstance(value, list) else [value]:
            if dest in _PATHS or not isinstance(text, str):
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                shown = text.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")
                _fail(f"'{shown}' is not UTF-8 text: write the command's arguments in UTF-8")


def _run(work: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run(work)`, the one way a command runs its work. Ctrl-C cancels the work, as asyncio.run's own
    handler does, and then ends the command as interrupted (KeyboardInterrupt, for main) whatever its
    unwinding did: a SQLite connection cut off in its busy wait refuses its rollback with `database is
    locked`, and a check of the database may read the cancellation as the database not answering, then
    return as if nothing had been asked."""
    return asyncio.run(_interruptible(work))


async def _interruptible(work: Coroutine[Any, Any, T]) -> T:
    loop, task = asyncio.get_running_loop(), asyncio.current_task()
    interrupted = False

    def interrupt() -> None:
        nonlocal interrupted
        interrupted = True
        if task is not None:
            task.cancel()

    loop.add_signal_handler(signal.SIGINT, interrupt)  # work that sets its own (the worker's) replaces it
    try:
        done = await work
    except BaseException:
        if interrupted:
            raise KeyboardInterrupt from None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    if interrupted:
        raise KeyboardInterrupt
    return done


def _end_as_interrupted() -> NoReturn:
    """End as Python ends on Ctrl-C, without its traceback: the work under way was cancelled (a transaction
    rolled back), which the user knows, having asked for it. By SIGINT itself, so that a shell sees status
    130 and a script running the command stops too (a shell waiting for a command that exits normally takes
    it that the command dealt with the interrupt); with exit status 130 where the signal is ignored (the
    container's first process, which the kernel spares from signals it does not handle)."""
    for stream in (sys.stdout, sys.stderr):
        with suppress(OSError, ValueError):  # a closed pipe, a closed file
            stream.flush()
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGINT)
    raise SystemExit(128 + signal.SIGINT)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    _refuse_text_not_in_utf8(args)
    _warn_of_unknown_variables()
    try:
        args.run(args)
    except ValidationError as exc:
        # Every command reads its settings from the environment (Settings()), each where it needs them.
        if exc.title != Settings.__name__:
            raise
        _refuse_settings(exc)
    except KeyboardInterrupt:
        _end_as_interrupted()


if __name__ == "__main__":
    main()
