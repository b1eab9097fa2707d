"""`oms-api`: serve | worker | demo | migrate | keys | inventory verify | openapi."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from oms_api import __version__
from oms_api.domain.access import Scope
from oms_api.settings import Settings, get_settings


class CommandError(Exception):
    """Why a command cannot run, in one line: printed as `error: …`, exit status 1."""


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "handler", None):
        # `oms-api keys` alone: that group's help, not the top level's.
        getattr(args, "help_parser", parser).print_help()
        return 2
    try:
        return int(args.handler(args) or 0)
    except KeyboardInterrupt:
        return 130
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        if exc.title != Settings.__name__:
            raise
        print(f"error: {_settings_problem(exc)}", file=sys.stderr)
        return 1


def _settings_problem(exc: ValidationError) -> str:
    """The environment's first bad variable, in one line: `OMS_DB_POOL_SIZE=0: …`."""
    error = exc.errors()[0]
    field = str(error["loc"][0]).lower().removeprefix("oms_") if error["loc"] else ""
    variable = "DATABASE_URL" if field == "database_url" else f"OMS_{field.upper()}"
    message = error["msg"].removeprefix("Value error, ")
    if variable in message:  # our validators name it already
        return message
    return f"{variable}={error['input']!r}: {message}"


def _port(value: str) -> int:
    number = _whole_number(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"must be from 1 to 65535, not {number}")
    return number


def _at_least_one(value: str) -> int:
    number = _whole_number(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {number}")
    return number


def _whole_number(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {value!r}") from None


def _key_name(value: str) -> str:
    if not value.strip():
        raise argparse.ArgumentTypeError("must not be blank")
    if len(value) > 200:  # as the API's
        raise argparse.ArgumentTypeError("must be at most 200 characters")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="oms-api", description="Headless order management service."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(title="commands")

    serve = sub.add_parser("serve", help="run the API (migrates first unless --no-migrate)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=_port, default=8000, help="1 to 65535 (default 8000)")
    serve.add_argument(
        "--workers", type=_at_least_one, default=1, help="server processes (default 1)"
    )
    serve.add_argument("--no-migrate", action="store_true", help="do not run migrations on start")
    serve.add_argument("--log-format", choices=["json", "console"], help="overrides OMS_LOG_FORMAT")
    serve.add_argument(
        "--no-dispatcher",
        action="store_true",
        help="do not deliver webhooks or send notifications here (run `oms-api worker`)",
    )
    serve.add_argument("--demo", action="store_true", help="seed a demo shop first, print its keys")
    serve.set_defaults(handler=_serve)

    demo = sub.add_parser(
        "demo", help="seed a demo shop (locations, products, stock, channels, orders)"
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="where you will serve the API, for its curl examples"
    )
    demo.add_argument(
        "--port", type=_port, default=8000, help="the port you will serve it on (default 8000)"
    )
    demo.set_defaults(handler=_demo)

    worker = sub.add_parser(
        "worker", help="run the webhook dispatcher, the notifier and housekeeping alone"
    )
    worker.set_defaults(handler=_worker)

    migrate = sub.add_parser("migrate", help="upgrade the database to the latest migration")
    migrate.set_defaults(handler=_migrate)

    keys = sub.add_parser("keys", help="manage API keys")
    keys.set_defaults(help_parser=keys)
    keys_sub = keys.add_subparsers(title="keys commands")
    create = keys_sub.add_parser("create", help="create a key and print it (shown once)")
    create.add_argument("--name", required=True, type=_key_name)
    create.add_argument(
        "--scope", dest="scopes", action="append", required=True,
        choices=[s.value for s in Scope], help="repeat for several scopes",
    )  # fmt: skip
    create.add_argument("--channel", help="bind the key to the channel with this code")
    create.set_defaults(handler=_keys_create)
    listing = keys_sub.add_parser("list", help="list keys (never their secrets)")
    listing.set_defaults(handler=_keys_list)
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id, at once")
    revoke.add_argument("key_id")
    revoke.set_defaults(handler=_keys_revoke)

    inventory = sub.add_parser("inventory", help="inventory tools")
    inventory.set_defaults(help_parser=inventory)
    inventory_sub = inventory.add_subparsers(title="inventory commands")
    verify = inventory_sub.add_parser(
        "verify", help="check that the movement ledger sums to the stock levels; exit 1 on drift"
    )
    verify.set_defaults(handler=_inventory_verify)

    openapi = sub.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument("--output", "-o", default="openapi/openapi.json", help="'-' for stdout")
    openapi.set_defaults(handler=_openapi)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import uvicorn

    from oms_api import migrations_runner
    from oms_api.embedded import database_url
    from oms_api.observability import configure_logging

    if args.log_format:
        os.environ["OMS_LOG_FORMAT"] = args.log_format
    if args.no_dispatcher:
        os.environ["OMS_DISPATCHER"] = "false"
    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    _check_can_listen(args.host, args.port)
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; exiting through
    # SystemExit (not the default handler's instant death) lets the embedded PostgreSQL stop.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    with database_url(settings.database_url, settings.data_dir, owner=True) as url:
        if not args.no_migrate:
            with _connection_errors(url):
                migrations_runner.upgrade(url)
        os.environ["DATABASE_URL"] = url  # worker processes inherit it
        get_settings.cache_clear()
        if args.demo:
            # The demo's emails go somewhere to read: files in the data directory.
            os.environ.setdefault("OMS_SMTP_URL", _demo_mail_url(settings))
            get_settings.cache_clear()
            with _connection_errors(url):
                print(_seed_demo(url, f"http://{args.host}:{args.port}"), flush=True)
        with tempfile.TemporaryDirectory(prefix="oms-metrics-") as metrics_dir:
            if args.workers > 1:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
            uvicorn.run(
                "oms_api.main:create_app",
                factory=True,
                host=args.host,
                port=args.port,
                workers=args.workers,
                log_config=None,
                access_log=False,
                timeout_graceful_shutdown=20,
                server_header=False,
            )
    return 0


def _check_can_listen(host: str, port: int) -> None:
    """Refuse at once, in one line, an address uvicorn could not listen on (a port another
    program has, a host that is not this machine's) — before PostgreSQL is started and
    migrated for nothing, and not as a log line after it."""
    import errno

    try:
        family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror as exc:
        raise CommandError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind(address)
        except OSError as exc:
            hint = ""
            if exc.errno == errno.EADDRINUSE:
                hint = " (another program has it: choose a free port with --port)"
            reason = (exc.strerror or str(exc)).lower()
            raise CommandError(f"cannot listen on {host}:{port}: {reason}{hint}") from None


def _demo_mail_url(settings: Settings) -> str:
    """Where the demo's customer emails go unless OMS_SMTP_URL says: `.eml` files in the
    data directory."""
    return f"file:{(settings.data_dir / 'mail').resolve()}"


def _seed_demo(url: str, base_url: str) -> str:
    from oms_api.demo import instructions, seed_demo
    from oms_api.main import create_app
    from oms_api.services.notifier import Notifier

    async def run() -> str:
        settings = get_settings()
        settings = settings.model_copy(
            update={"database_url": url, "dispatcher": False,
                    "smtp_url": settings.smtp_url or _demo_mail_url(settings)}
        )  # fmt: skip
        app = create_app(settings)
        async with app.router.lifespan_context(app):
            seeded = await seed_demo(app)
            # Tell the demo's customers what happened to their orders, now.
            notifier = Notifier(settings=settings, database=app.state.database)
            while await notifier.run_once():
                pass
            return instructions(seeded, base_url, mail=notifier.transport)

    return asyncio.run(run())


def _demo(args: argparse.Namespace) -> int:
    from oms_api import migrations_runner

    settings = get_settings()
    with _database(settings, create=True) as url:
        migrations_runner.upgrade(url)
        print(_seed_demo(url, f"http://{args.host}:{args.port}"))
    # `demo` seeds and exits: the commands above need the API running, where they point.
    serve = "oms-api serve"
    if args.host != "127.0.0.1":
        serve += f" --host {args.host}"
    if args.port != 8000:
        serve += f" --port {args.port}"
    print(f"Start the API to try them: {serve} (or seed and serve in one: oms-api serve --demo).")
    return 0


def _worker(args: argparse.Namespace) -> int:
    from oms_api.observability import configure_logging

    settings = get_settings()
    configure_logging(settings.log_format, settings.log_level)
    with _database(settings) as url:
        asyncio.run(_run_worker(settings.model_copy(update={"database_url": url})))
    return 0


async def _run_worker(settings: Settings) -> None:
    """Dispatcher, notifier and housekeeping until SIGTERM or Ctrl-C."""
    import logging

    from oms_api.db import Database, create_engine
    from oms_api.main import background_tasks

    if not settings.database_url:
        raise RuntimeError("the worker needs a database URL")
    database = Database(create_engine(settings, settings.database_url))
    tasks = background_tasks(settings, database, dispatcher=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    logging.getLogger("oms_api").info("worker started: delivering webhooks, sending notifications")
    try:
        await stop.wait()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await database.dispose()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _migrate(args: argparse.Namespace) -> int:
    from oms_api import migrations_runner

    settings = get_settings()
    with _database(settings) as url:
        migrations_runner.upgrade(url)
    print("database is at migration", migrations_runner.head_revision())
    return 0


@contextmanager
def _database(settings: Settings, *, create: bool = False) -> Iterator[str]:
    """The URL a command works on: DATABASE_URL, or else the embedded PostgreSQL in
    OMS_DATA_DIR, said so on stderr. Only `create` commands (`demo`) make a new one; the
    others need the one `serve` made: against a new, empty database `inventory verify` and
    `keys create` would report success about nothing. A database that cannot be used is a
    `CommandError` naming why."""
    from oms_api.embedded import database_url, exists

    if not settings.database_url:
        where = settings.data_dir.expanduser().resolve()
        if exists(where):
            print(
                f"DATABASE_URL is not set: using the embedded database at {where}", file=sys.stderr
            )
        elif create:
            print(
                f"DATABASE_URL is not set: creating an embedded database at {where}",
                file=sys.stderr,
            )
        else:
            raise CommandError(
                f"DATABASE_URL is not set and no embedded database exists at {where} "
                "(run `oms-api serve` first or set DATABASE_URL)"
            )
    with database_url(settings.database_url, settings.data_dir) as url, _connection_errors(url):
        yield url


@contextmanager
def _connection_errors(url: str) -> Iterator[None]:
    """A database that cannot be used, raised in the block, as a `CommandError` saying why."""
    try:
        yield
    except Exception as exc:
        problem = _connection_problem(exc)
        if problem is None:
            raise
        raise CommandError(f"{problem} ({_without_password(url)})") from None


def _connection_problem(exc: BaseException) -> str | None:
    """Why the database could not be used, if that is what `exc` (or what caused it) says;
    None for anything else, whose traceback is worth seeing."""
    import asyncpg

    seen: set[int] = set()
    pending: list[BaseException | None] = [exc]
    while pending:
        error = pending.pop()
        if error is None or id(error) in seen:
            continue
        seen.add(id(error))
        reason = " ".join(str(error).split()) or type(error).__name__
        if isinstance(error, asyncpg.InvalidCatalogNameError):
            return reason  # database "x" does not exist
        if isinstance(
            error,
            asyncpg.InvalidAuthorizationSpecificationError
            | asyncpg.InvalidPasswordError
            | asyncpg.CannotConnectNowError
            | asyncpg.TooManyConnectionsError,
        ):
            return f"the database refused the connection: {reason}"
        if isinstance(error, socket.gaierror):
            return f"cannot connect to the database: unknown host ({reason})"
        # Sockets' errors name no file; a file's (a demo's mail, …) does, and is not ours.
        if isinstance(error, OSError) and error.filename is None:
            return f"cannot connect to the database: {reason}"
        if isinstance(error, asyncpg.ConnectionDoesNotExistError):
            return f"lost the connection to the database: {reason}"
        pending += [error.__cause__, error.__context__, getattr(error, "orig", None)]
    return None


def _without_password(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _with_session(settings: Settings, work: Any) -> Any:
    """Run `work(session)` in one committed transaction against the configured database."""
    from oms_api import migrations_runner
    from oms_api.db import Database, create_engine

    async def run(url: str) -> Any:
        database = Database(create_engine(settings, url, pool_size=1, max_overflow=0))
        try:
            async with database.session() as session:
                return await work(session)
        finally:
            await database.dispose()

    with _database(settings) as url:
        if not settings.database_url:
            migrations_runner.upgrade(url)
        return asyncio.run(run(url))


def _keys_create(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from oms_api.models import Channel
    from oms_api.services import access

    async def work(session: Any) -> tuple[Any, str] | None:
        channel_id = None
        if args.channel:
            channel_id = await session.scalar(
                select(Channel.id).where(Channel.code == args.channel)
            )
            if channel_id is None:
                return None
        return await access.create_key(
            session, name=args.name, scopes=[Scope(s) for s in args.scopes], channel_id=channel_id
        )

    from oms_api.errors import Problem

    try:
        result = _with_session(get_settings(), work)
    except Problem as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    if result is None:
        print(f"error: no channel with code {args.channel!r}", file=sys.stderr)
        return 1
    key, secret = result
    print(secret)
    print(
        f"id={key.id} scopes={','.join(key.scopes)} channel={key.channel_id or '-'}",
        file=sys.stderr,
    )
    print("Store the key now: it is not shown again.", file=sys.stderr)
    return 0


def _keys_list(args: argparse.Namespace) -> int:
    from sqlalchemy import select

    from oms_api.models import ApiKey

    async def work(session: Any) -> list[Any]:
        return list((await session.scalars(select(ApiKey).order_by(ApiKey.id))).all())

    for key in _with_session(get_settings(), work):
        state = f"revoked {key.revoked_at:%Y-%m-%d}" if key.revoked_at else "active"
        print(
            f"{key.id}\t{key.prefix}…\t{key.name}\t{','.join(key.scopes)}\t{key.channel_id or '-'}\t{state}"
        )
    return 0


def _keys_revoke(args: argparse.Namespace) -> int:
    from oms_api.errors import NotFound
    from oms_api.services import access

    async def work(session: Any) -> Any:
        return await access.revoke_key(session, args.key_id)

    try:
        key = _with_session(get_settings(), work)
    except NotFound as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        return 1
    print(f"revoked {key.id} ({key.name})")
    return 0


def _inventory_verify(args: argparse.Namespace) -> int:
    from oms_api.services.inventory import verify_stock

    check = _with_session(get_settings(), verify_stock)
    for d in check.ledger:
        print(
            f"DRIFT product={d.product_id} location={d.location_id} "
            f"on_hand={d.on_hand} ledger={d.ledger_on_hand} "
            f"reserved={d.reserved} ledger={d.ledger_reserved}"
        )
    for r in check.reservations:
        print(
            f"RESERVED product={r.product_id} location={r.location_id} "
            f"reserved={r.reserved} order_reservations={r.reservations}"
        )
    for line in check.lines:
        print(
            f"LINE line={line.line_id} order={line.order_id} "
            f"quantity_reserved={line.quantity_reserved} order_reservations={line.reservations}"
        )
    for t in check.totals:
        print(f"TOTAL product={t.product_id} available={t.available} levels={t.levels_available}")
    problems = len(check.ledger) + len(check.reservations) + len(check.lines) + len(check.totals)
    verdict = (
        "ledger matches levels, reservations match levels and lines, totals match levels"
        if check.clean
        else f"{problems} drift(s)"
    )
    print(f"checked {check.levels} stock level(s): {verdict}")
    return 0 if check.clean else 1


def _openapi(args: argparse.Namespace) -> int:
    from oms_api.main import create_app

    document = json.dumps(create_app().openapi(), indent=2, ensure_ascii=False) + "\n"
    if args.output == "-":
        sys.stdout.write(document)
    else:
        path = Path(args.output)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(document)
        print(f"wrote {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
