"""The `outcomes` console command: everything an operator needs without a Python shell."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from datetime import timedelta

from outcomes.config import ConfigError, Settings


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand and return its exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except ConfigError as error:
        print(f"outcomes: configuration error: {error}", file=sys.stderr)
        return 2


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with one subparser per subcommand."""
    parser = argparse.ArgumentParser(
        prog="outcomes", description="Operate the Outcomes collector, aggregator and dashboard."
    )
    sub = parser.add_subparsers(required=True, metavar="COMMAND")

    p = sub.add_parser("migrate", help="bring the database schema up to date")
    p.set_defaults(handler=cmd_migrate)

    p = sub.add_parser("create-user", help="create a staff or member account")
    p.add_argument("--email", required=True)
    p.add_argument("--role", choices=("staff", "member"), required=True)
    p.add_argument("--member-id", type=int, help="the member organisation (member accounts)")
    p.add_argument("--password", help="the password (asked for if omitted)")
    p.add_argument("--admin", action="store_true", help="a staff account that manages accounts")
    p.set_defaults(handler=cmd_create_user)

    p = sub.add_parser("create-token", help="create an API token for an account and print it")
    p.add_argument("--email", required=True)
    p.add_argument("--name", default="cli", help="a label to recognise the token by")
    p.add_argument("--expires-days", type=int, help="days the token works (default: until revoked)")
    p.set_defaults(handler=cmd_create_token)

    p = sub.add_parser("load-demo", help="load the labelled demo data set")
    p.add_argument("--if-empty", action="store_true", help="do nothing if members exist")
    p.set_defaults(handler=cmd_load_demo)

    p = sub.add_parser("aggregate", help="ask the workers for a new snapshot")
    p.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait for it")
    p.set_defaults(handler=cmd_aggregate)

    p = sub.add_parser("serve", help="run one service in the foreground (used by compose)")
    p.add_argument("service", choices=("collector", "dashboard", "worker", "beat"))
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--workers", type=int, default=2, help="web processes or worker children")
    p.add_argument("--beat", action="store_true", help="worker: also run the beat scheduler")
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("run", help="start everything locally (what `make run` does)")
    p.set_defaults(handler=cmd_run)
    return parser


def cmd_migrate(_args: argparse.Namespace) -> int:
    """Bring the schema up to date."""
    from outcomes.migrate import upgrade

    settings = Settings.from_env()
    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    """Create an account."""
    from outcomes.accounts import AccountError, create_user
    from outcomes.db import session_scope

    password = args.password or getpass.getpass("Password (12+ characters): ")
    try:
        with session_scope(Settings.from_env().database_url) as session:
            user = create_user(
                session,
                email=args.email,
                password=password,
                role=args.role,
                member_id=args.member_id,
                admin=args.admin,
            )
            print(f"created {user.role} account {user.email} (id {user.id})")
    except AccountError as error:
        print(f"outcomes: {error}", file=sys.stderr)
        return 1
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    """Create an API token and print it once."""
    from outcomes.accounts import create_token, user_by_email
    from outcomes.db import session_scope
    from outcomes.models import utcnow

    with session_scope(Settings.from_env().database_url) as session:
        user = user_by_email(session, args.email)
        if user is None:
            print(f"outcomes: no account for {args.email}", file=sys.stderr)
            return 1
        days = args.expires_days
        expires = utcnow() + timedelta(days=days) if days else None
        print(create_token(session, user=user, name=args.name, expires_at=expires))
    return 0


def cmd_load_demo(args: argparse.Namespace) -> int:
    """Load the demo data set."""
    from outcomes.db import session_scope
    from outcomes.demo import is_empty, load_demo

    with session_scope(Settings.from_env().database_url) as session:
        if not is_empty(session):
            if args.if_empty:
                print("database already holds data; demo not loaded")
                return 0
            print("outcomes: the database already holds members; not loading demo", file=sys.stderr)
            return 1
        counts = load_demo(session)
    print("loaded demo data: " + ", ".join(f"{n} {table}" for table, n in counts.items()))
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    """Queue an aggregation, and optionally wait for its snapshot."""
    from outcomes.db import session_scope
    from outcomes.models import Outbox
    from outcomes.queue import enqueue, request_aggregation

    settings = Settings.from_env()
    with session_scope(settings.database_url) as session:
        row = request_aggregation(session, reason="operator request", requested_by=None)
    sent = enqueue(settings, row)
    print(f"queued {row.job_id}" + ("" if sent else " (broker down; the sweep will send it)"))
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        with session_scope(settings.database_url, write=False) as session:
            done = session.get(Outbox, row.id)
            if done is not None and done.snapshot_id is not None:
                print(f"published snapshot {done.snapshot_id}")
                return 0
        time.sleep(0.2)
    return 1 if args.wait else 0


def cmd_serve(args: argparse.Namespace) -> int:
    """Replace this process with gunicorn or celery for one service."""
    from outcomes.runner import service_command

    settings = Settings.from_env()
    command = service_command(
        args.service, settings, host=args.host, workers=args.workers, beat=args.beat
    )
    os.execvp(command[0], command)  # noqa: S606 (a fixed argument list, no shell)
    return 0  # not reached


def cmd_run(_args: argparse.Namespace) -> int:
    """Start everything locally."""
    from outcomes.runner import run

    return run()


if __name__ == "__main__":
    sys.exit(main())
