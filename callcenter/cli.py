"""The `callcenter` command line: run the switch, upgrade the database, manage users and
their API tokens, import customers, repair recordings.

Exit status: 0 done, 1 the request could not be done (a one-line message on stderr, no
traceback), 2 the command line itself was wrong (argparse's usage message), 3 (customers
import) done, but conflicts were left unchanged because no --conflicts was given.
Heavy imports (the switch, SQLAlchemy) happen inside the commands, so that `--help` and
usage errors answer at once.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import sys
import unicodedata
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, BinaryIO, TypeVar

from callcenter.data_dir import keep_private
from switch.config import Config, ConfigError, load_config

if TYPE_CHECKING:
    from apps import ApiTokenRecord, ApiTokenService, UserRecord, UserService

T = TypeVar("T")

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CONFLICTS = 0, 1, 2, 3


class CommandError(Exception):
    """A request that cannot be done; main() prints the message and exits 1."""


# ---- commands ---------------------------------------------------------------------------


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    from callcenter.serve import serve

    return serve(config)


def cmd_db_upgrade(config: Config, args: argparse.Namespace) -> int:
    import apps

    _run(apps.upgrade_database(config.database.url))
    print("database schema is up to date")
    return EXIT_OK


def cmd_user_add(config: Config, args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else _ask_new_password()
    record = _run_with_users(
        config,
        lambda users: users.add_user(
            args.username,
            password,
            extension=args.extension,
            role=args.role,
            name=args.name,
        ),
        audited=("user.create", args.username),
        detail=lambda made: {"role": made.role.value, "extension": made.extension},
    )
    extension = f", extension {record.extension}" if record.extension else ""
    print(f"added user '{record.username}' ({record.role.value}{extension})")
    return EXIT_OK


def cmd_user_list(config: Config, args: argparse.Namespace) -> int:
    records = _run_with_users(config, lambda users: users.list_users())
    print(_user_table(records))
    return EXIT_OK


def cmd_user_disable(config: Config, args: argparse.Namespace) -> int:
    _run_with_users(config, lambda users: users.set_disabled(args.username, True),
                    audited=("user.disable", args.username))
    print(f"user '{args.username}' disabled: no web login, no phone; history kept")
    return EXIT_OK


def cmd_user_enable(config: Config, args: argparse.Namespace) -> int:
    _run_with_users(config, lambda users: users.set_disabled(args.username, False),
                    audited=("user.enable", args.username))
    print(f"user '{args.username}' enabled")
    return EXIT_OK


def cmd_user_passwd(config: Config, args: argparse.Namespace) -> int:
    password = args.password if args.password is not None else _ask_new_password()
    _run_with_users(config, lambda users: users.set_password(args.username, password),
                    audited=("user.password_reset", args.username))
    print(f"password of '{args.username}' changed; their web sessions are ended")
    return EXIT_OK


def cmd_token_create(config: Config, args: argparse.Namespace) -> int:
    from apps.audit import COMMAND_LINE, SYSTEM

    issued = _run_with_tokens(config, lambda tokens: tokens.create(
        SYSTEM, args.user, label=args.name, source_ip=COMMAND_LINE))
    # The token alone on stdout (TOKEN=$(callcenter token create ...)); the rest beside it.
    print(issued.token)
    print(f"token {issued.record.id} for '{issued.record.username}' created: it is shown "
          "only this once, keep it secret", file=sys.stderr)
    return EXIT_OK


def cmd_token_list(config: Config, args: argparse.Namespace) -> int:
    records = _run_with_tokens(config, lambda tokens: tokens.list_tokens(args.user))
    print(_token_table(records))
    return EXIT_OK


def cmd_token_revoke(config: Config, args: argparse.Namespace) -> int:
    from apps.audit import COMMAND_LINE, SYSTEM

    record = _run_with_tokens(config, lambda tokens: tokens.revoke(
        SYSTEM, args.id, source_ip=COMMAND_LINE))
    print(f"token {record.id} of '{record.username}' revoked")
    return EXIT_OK


def cmd_recordings_repair(config: Config, args: argparse.Namespace) -> int:
    from switch.media import WavError, repair_wav

    failed = False
    for path in args.files:
        try:
            result = repair_wav(path)
        except (WavError, OSError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            print(f"callcenter: cannot repair {path}: {reason}", file=sys.stderr)
            failed = True
            continue
        cut = result.bytes_truncated
        partial = f", a partial frame of {cut} {'byte' if cut == 1 else 'bytes'} cut off"
        print(f"{path}: {result.frames_kept} frames kept{partial if cut else ''}")
    return EXIT_FAILED if failed else EXIT_OK


# How many row errors (and conflicts) `customers import` prints; the --errors report
# has all the errors.
MAX_ERRORS_SHOWN = 20
# What a conflict row's resolution did, for the line that reports it.
_RESOLVED = {"skip": "skipped", "update": "updated", "add": "added"}


def cmd_customers_import(config: Config, args: argparse.Namespace) -> int:
    import apps
    from apps.audit import COMMAND_LINE
    from apps.customer_import import CustomerImporter, ImportResult, write_error_report
    from apps.customer_sheet import SheetError

    def show_progress(rows_done: int, rows_total: int) -> None:
        print(f"\r{rows_done}/{rows_total} rows", end="", file=sys.stderr, flush=True)

    async def run(stream: BinaryIO) -> ImportResult:
        await apps.upgrade_database(config.database.url)
        db = await apps.Database.connect(config.database.url)
        try:
            result = await CustomerImporter(
                db, default_area_code=config.customers.default_area_code or None,
                vip_levels=apps.VipLevels(config.customers.vip_levels),
            ).import_file(
                stream,
                existing="skip" if args.skip_existing else "update",
                conflicts=args.conflicts or "skip",
                progress=show_progress if sys.stderr.isatty() else None,
            )
            await apps.AuditLog(db).record(
                "customers.import", actor=apps.SYSTEM.username,
                target=f"customer_import:{os.path.basename(args.file)}",
                detail={"file": os.path.basename(args.file), "imported": result.imported,
                        "updated": result.updated, "unchanged": result.unchanged,
                        "skipped": result.skipped, "rejected": result.rejected,
                        "conflicts": len(result.conflicts),
                        "conflicts_choice": args.conflicts or "skip"},
                source_ip=COMMAND_LINE)
            return result
        finally:
            await db.close()

    try:
        with open(args.file, "rb") as stream:
            result = _run(run(stream))
    except SheetError as error:
        raise CommandError(f"cannot import {args.file}: {error}") from None
    except OSError as error:
        raise CommandError(f"cannot import {args.file}: {error.strerror or error}") from None
    finally:
        if sys.stderr.isatty():
            print(file=sys.stderr)
    print(result.summary())
    _print_some([str(row_error) for row_error in result.errors])
    _print_some([f"row {c.row}: number {c.number} belongs to {c.existing_name}, the sheet "
                 f"says {c.sheet_name} ({_RESOLVED[str(c.resolution)]})"
                 for c in result.conflicts])
    if args.errors is not None:
        try:
            write_error_report(result, args.errors)
        except OSError as error:
            raise CommandError(
                f"cannot write the error report {args.errors}: {error.strerror or error}"
            ) from None
        rows = "row" if result.rejected == 1 else "rows"
        print(f"rejected {rows} written to {args.errors}")
    if result.conflicts and args.conflicts is None:
        n = len(result.conflicts)
        print(f"callcenter: {n} {'conflict' if n == 1 else 'conflicts'} left unchanged; "
              "choose with --conflicts skip|update|add", file=sys.stderr)
        return EXIT_CONFLICTS
    return EXIT_OK


def _print_some(lines: Sequence[str]) -> None:
    for line in lines[:MAX_ERRORS_SHOWN]:
        print(line)
    if len(lines) > MAX_ERRORS_SHOWN:
        print(f"... and {len(lines) - MAX_ERRORS_SHOWN} more")


# ---- helpers ------------------------------------------------------------------------------


def _run_with_users(
    config: Config,
    action: Callable[[UserService], Awaitable[T]],
    *,
    audited: tuple[str, str] | None = None,
    detail: Callable[[T], dict[str, object]] | None = None,
) -> T:
    """Run ``action`` on a UserService, upgrading the schema first so that a fresh data
    directory needs no separate `callcenter db upgrade`. ``audited`` (action, username):
    the change is written to the audit log as done by the system from the command line,
    with ``detail`` of the result."""
    import apps
    from apps.audit import COMMAND_LINE

    async def run() -> T:
        await apps.upgrade_database(config.database.url)
        db = await apps.Database.connect(config.database.url)
        try:
            result = await action(apps.UserService(db, config.sip.realm))
            if audited is not None:
                what, username = audited
                await apps.AuditLog(db).record(
                    what, actor=apps.SYSTEM.username, target=f"user:{username}",
                    detail=detail(result) if detail is not None else {},
                    source_ip=COMMAND_LINE)
            return result
        finally:
            await db.close()

    return _run(run())


def _run_with_tokens(config: Config, action: Callable[[ApiTokenService], Awaitable[T]]) -> T:
    """Run ``action`` on an ApiTokenService (which audits its own changes), upgrading the
    schema first."""
    import apps

    async def run() -> T:
        await apps.upgrade_database(config.database.url)
        db = await apps.Database.connect(config.database.url)
        try:
            return await action(apps.ApiTokenService(db, apps.AuditLog(db)))
        finally:
            await db.close()

    return _run(run())


def _run(coroutine: Coroutine[object, object, T]) -> T:
    """asyncio.run, turning the errors a user can fix into a CommandError."""
    from sqlalchemy.exc import SQLAlchemyError

    import apps

    try:
        return asyncio.run(coroutine)
    except (apps.UserError, apps.ApiTokenError, apps.AuditError) as error:
        raise CommandError(str(error)) from None
    except (SQLAlchemyError, OSError) as error:
        # A bad URL, a database that is down, a data directory that cannot be written.
        raise CommandError(f"cannot use the database: {error}") from None


def _ask_new_password() -> str:
    first = getpass.getpass("New password: ")
    if getpass.getpass("Repeat password: ") != first:
        raise CommandError("passwords do not match")
    return first


def _width(text: str) -> int:
    """Terminal columns of ``text``: CJK characters (names, role labels) take two."""
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def _user_table(records: Sequence[UserRecord]) -> str:
    if not records:
        return "no users"
    rows = [["USERNAME", "EXTENSION", "ROLE", "STATUS", "NAME", "CREATED (UTC)"]]
    rows += [
        [
            record.username,
            record.extension or "-",
            record.role.value,
            "disabled" if record.disabled else "active",
            record.name or "-",
            record.created_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for record in records
    ]
    return _table(rows)


def _token_table(records: Sequence[ApiTokenRecord]) -> str:
    if not records:
        return "no tokens"

    def minute(at: datetime | None) -> str:
        return "-" if at is None else at.strftime("%Y-%m-%d %H:%M")

    rows = [["ID", "USER", "LABEL", "CREATED (UTC)", "LAST USED (UTC)", "REVOKED (UTC)"]]
    rows += [
        [str(record.id), record.username, record.label or "-", minute(record.created_at),
         minute(record.last_used_at), minute(record.revoked_at)]
        for record in records
    ]
    return _table(rows)


def _table(rows: Sequence[Sequence[str]]) -> str:
    """Columns aligned for a terminal, the first row being the headings."""
    widths = [max(_width(row[column]) for row in rows) for column in range(len(rows[0]))]
    return "\n".join(
        "  ".join(
            cell + " " * (width - _width(cell)) for cell, width in zip(row, widths, strict=True)
        ).rstrip()
        for row in rows
    )


# ---- argument parsing ---------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    # --config is accepted before or after the command; SUPPRESS keeps a value given
    # before the command from being reset by the subcommand's default.
    config_option = argparse.ArgumentParser(add_help=False)
    config_option.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS,
        help="TOML configuration (default: ./callcenter.toml if present)",
    )
    parser = argparse.ArgumentParser(
        prog="callcenter",
        description="Call center softswitch: run it and manage its database and users.",
        parents=[config_option],
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    serve = commands.add_parser(
        "serve", parents=[config_option], help="run the switch until SIGTERM or Ctrl-C"
    )
    serve.set_defaults(handler=cmd_serve)

    db = commands.add_parser("db", help="database schema")
    db_commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", parents=[config_option], help="create or upgrade the schema"
    )
    upgrade.set_defaults(handler=cmd_db_upgrade)

    user = commands.add_parser("user", help="web and phone accounts")
    user_commands = user.add_subparsers(dest="user_command", metavar="COMMAND", required=True)
    add = user_commands.add_parser("add", parents=[config_option], help="add a user")
    add.add_argument("--username", required=True, help="login name")
    add.add_argument("--password", help="password (asked for when left out)")
    add.add_argument("--extension", help="phone extension; also the SIP username")
    add.add_argument("--role", default="agent", help="role (default: agent)")
    add.add_argument("--name", help="full name")
    add.set_defaults(handler=cmd_user_add)
    listing = user_commands.add_parser("list", parents=[config_option], help="list users")
    listing.set_defaults(handler=cmd_user_list)
    passwd = user_commands.add_parser(
        "passwd", parents=[config_option], help="set a user's password"
    )
    passwd.add_argument("username")
    passwd.add_argument("--password", help="new password (asked for twice when left out)")
    passwd.set_defaults(handler=cmd_user_passwd)
    disable = user_commands.add_parser(
        "disable", parents=[config_option],
        help="stop a user's web login, sessions and phone at once (history is kept)",
    )
    disable.add_argument("username")
    disable.set_defaults(handler=cmd_user_disable)
    enable = user_commands.add_parser(
        "enable", parents=[config_option], help="let a disabled user log in again"
    )
    enable.add_argument("username")
    enable.set_defaults(handler=cmd_user_enable)

    token = commands.add_parser("token", help="API tokens for integrations and scripts")
    token_commands = token.add_subparsers(dest="token_command", metavar="COMMAND",
                                          required=True)
    token_create = token_commands.add_parser(
        "create", parents=[config_option],
        help="make a token acting as a user (Authorization: Bearer ... on /api/v1); "
        "it is printed once, only its hash is kept",
    )
    token_create.add_argument("--user", required=True, metavar="NAME",
                              help="the user the token acts as, with their permissions")
    token_create.add_argument("--name", metavar="LABEL",
                              help="what the token is for (shown by token list)")
    token_create.set_defaults(handler=cmd_token_create)
    token_list = token_commands.add_parser(
        "list", parents=[config_option], help="list tokens (never the tokens themselves)")
    token_list.add_argument("--user", metavar="NAME", help="only this user's tokens")
    token_list.set_defaults(handler=cmd_token_list)
    token_revoke = token_commands.add_parser(
        "revoke", parents=[config_option], help="revoke a token: it stops working at once")
    token_revoke.add_argument("id", type=int, metavar="ID", help="the token's id (token list)")
    token_revoke.set_defaults(handler=cmd_token_revoke)

    customers = commands.add_parser("customers", help="the customer database")
    customers_commands = customers.add_subparsers(
        dest="customers_command", metavar="COMMAND", required=True
    )
    customers_import = customers_commands.add_parser(
        "import",
        parents=[config_option],
        help="import customers from an .xlsx sheet (批量导入客户数据)",
        description="Import customers from the first sheet of an .xlsx file; its first row "
        "names the columns (客户名称/name, 手机/phone, 集团编号/group code, ...). Good rows "
        "import, bad rows are listed by row and column, and so are conflicts: rows whose "
        "number is an existing customer's under another name. Exit status: 0 done, 1 the "
        "file could not be imported, 3 done but conflicts were skipped without --conflicts.",
    )
    customers_import.add_argument("file", metavar="FILE.xlsx", help="the sheet to import")
    existing = customers_import.add_mutually_exclusive_group()
    existing.add_argument(
        "--update",
        action="store_true",
        help="update customers that already exist (matched by external id, or by phone "
        "and name; default)",
    )
    existing.add_argument(
        "--skip-existing", action="store_true", help="leave customers that already exist alone"
    )
    customers_import.add_argument(
        "--conflicts",
        choices=("skip", "update", "add"),
        help="what a row does whose number is an existing customer's under another name: "
        "skip it (the default, and exit status 3 when any were skipped without this "
        "option), update that customer with the sheet's name and fields, or add a new "
        "customer sharing the number",
    )
    customers_import.add_argument(
        "--errors", metavar="OUT.xlsx", help="write the rejected rows and reasons to this file"
    )
    customers_import.set_defaults(handler=cmd_customers_import)

    recordings = commands.add_parser("recordings", help="call recordings (WAV files)")
    recordings_commands = recordings.add_subparsers(
        dest="recordings_command", metavar="COMMAND", required=True
    )
    repair = recordings_commands.add_parser(
        "repair",
        parents=[config_option],
        help="fix the WAV header of recordings cut off by a crash, keeping all their audio",
    )
    repair.add_argument("files", nargs="+", metavar="FILE", help="WAV file to repair in place")
    repair.set_defaults(handler=cmd_recordings_repair)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # argparse: usage errors (2) and --help (0)
        return exit_.code if isinstance(exit_.code, int) else EXIT_USAGE
    # Before anything is written: the database, its WAL, the web key, uploads, reports
    # and recordings are made owner-only (see callcenter.data_dir).
    keep_private()
    try:
        config = load_config(getattr(args, "config", None))
        status: int = args.handler(config, args)
    except (CommandError, ConfigError) as error:
        print(f"callcenter: {error}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print(file=sys.stderr)
        return 130  # the shell's convention for "ended by SIGINT"
    return status
