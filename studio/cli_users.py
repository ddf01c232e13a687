"""`studio users …` (the accounts of a workspace: add, list, remove, passwd, token, limit) and `studio audit` (who
did what, when, from where). Every change to an account is written to the audit trail; a password is read from the
terminal (twice) or from stdin, never from the command line, where other users of the machine would see it."""
from __future__ import annotations

import getpass
import json
import sys
from datetime import datetime, timezone


def by_command_line() -> dict:
    """Who changed an account from the command line: the machine's user running the command."""
    try:
        return {"by": f"command line ({getpass.getuser()})"}
    except (KeyError, OSError):
        return {"by": "command line"}


def _password(args) -> str:
    """The new password: stdin's first line with --password-stdin, else asked twice on the terminal."""
    from studio.users import AccountError
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    first = getpass.getpass(f"Password for {args.name}: ")
    if getpass.getpass("The same again: ") != first:
        raise AccountError("The two passwords differ: nothing was changed. Run the command again.")
    return first


def check_proxy(value: str | None) -> None:
    """`studio serve --trusted-proxy`: addresses or networks, comma-separated. ValueError in words otherwise (an
    unreadable entry would quietly trust no one, or the wrong one)."""
    import ipaddress
    for entry in (value or "").split(",") if value else []:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError:
            raise ValueError(f"--trusted-proxy {entry.strip()!r} is not an address or a network (like 10.0.0.5 or "
                             "10.0.0.0/8)") from None


def cmd_users(args, fail) -> int:
    from studio import audit
    from studio.users import AccountError, Users
    users = Users(args.workspace)
    try:
        if args.action == "list":
            return _list(users, args.json)
        if args.action == "limit":
            return _limit(users, args)
        if args.action == "add":
            first = not users.exist()
            users.add(args.name, _password(args), admin=args.admin)
            audit.record(users.root, "user added", args.name, admin=args.admin, **by_command_line())
            print(f"Added {'the admin ' if args.admin else ''}{args.name}.", file=sys.stderr)
            if first:  # a studio reads at its start whether its page asks for a login
                print("This is the workspace's first account: a studio already serving it without logins asks for "
                      "them only once it is started again (`studio serve`). Until then its page shows no runs and "
                      "starts none.", file=sys.stderr)
        elif args.action == "remove":
            users.remove(args.name)
            audit.record(users.root, "user removed", args.name, **by_command_line())
            print(f"Removed {args.name}.", file=sys.stderr)
        elif args.action == "passwd":
            users.require(args.name)  # before asking for a password
            users.set_password(args.name, _password(args))
            audit.record(users.root, "password changed", args.name, **by_command_line())
            print(f"Changed the password of {args.name}.", file=sys.stderr)
        elif args.revoke:
            users.revoke_token(args.name, args.revoke)
            audit.record(users.root, "token revoked", args.name, token_id=args.revoke, **by_command_line())
            print(f"Revoked token {args.revoke} of {args.name}.", file=sys.stderr)
        else:
            token_id, token = users.new_token(args.name)
            audit.record(users.root, "token created", args.name, token_id=token_id, **by_command_line())
            print(f"A new API token for {args.name} (id {token_id}). It is shown only this once: keep it somewhere "
                  f"safe. `studio users token {args.name} --revoke {token_id}` ends it.", file=sys.stderr)
            print(token)
    except AccountError as exc:
        return fail(str(exc))
    return 0


def _list(users, as_json: bool) -> int:
    rows = [{"name": u.name, "admin": u.admin, "created": _when(u.created), "tokens": [t["id"] for t in u.tokens],
             "limits": vars(u.limits)} for u in users.all()]
    if as_json:
        print(json.dumps({"users": rows}, indent=1))
    elif not rows:
        print(f"No users yet in {users.root}: the studio needs no login. `studio users add NAME` adds one.")
    else:
        print(f"{'name':<24} {'admin':<6} {'created':<17} {'runs':>5} {'upload MB':>10} {'disk GB':>8}  tokens")
        for row in rows:
            limits = row["limits"]
            print(f"{row['name']:<24} {'yes' if row['admin'] else 'no':<6} {row['created']:<17} "
                  f"{limits['max_runs']:>5} {limits['max_upload_mb']:>10} {limits['max_disk_gb']:>8}  "
                  f"{', '.join(row['tokens']) or '-'}")
    return 0


def _limit(users, args) -> int:
    from studio import audit
    given = {"max_runs": args.max_runs, "max_upload_mb": args.max_upload_mb, "max_disk_gb": args.max_disk_gb}
    if all(value is None for value in given.values()):
        limits = users.require(args.name).limits
    else:
        limits = users.set_limits(args.name, **given)
        audit.record(users.root, "limits changed", args.name,
                     **{k: v for k, v in given.items() if v is not None}, **by_command_line())
    print(f"{args.name}: at most {limits.max_runs} run(s) at once, uploads up to {limits.max_upload_mb} MB, "
          f"{limits.max_disk_gb} GB of disk.")
    return 0


def _when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M")


def _printable(line: str) -> str:
    """A line of the trail as the terminal may show it: a failed login's name is anyone's text, so its control
    characters (escape codes, line breaks) are shown escaped, never sent to the terminal."""
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in line)


def cmd_audit(args, fail) -> int:
    from studio import audit
    try:
        entries = audit.read(args.workspace, user=args.user, since=args.since)
    except audit.AuditError as exc:
        return fail(str(exc))
    if args.json:
        for entry in entries:
            print(json.dumps(entry, ensure_ascii=False))
        return 0
    if not entries:
        print("Nothing in the audit trail" + (" that matches" if args.user or args.since else " yet") + ".")
    for entry in entries:
        details = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in (entry.get("details") or {}).items())
        print(_printable(f"{entry['time']}  {entry.get('user') or '-':<20} {entry.get('address') or '-':<16} "
                         f"{entry['what']}{f' ({details})' if details else ''}"))
    return 0


def add_parsers(sub, common, fail) -> None:
    """This module's sub-commands; `fail(message)` is how they say why they could not do their job."""
    users = sub.add_parser("users", parents=[common], help="the studio's accounts: once one exists, the studio "
                           "asks for a login")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", parents=[common], help="add a user (asks for the password twice)")
    add.add_argument("--admin", action="store_true", help="an admin sees every run and the audit trail")
    listing = actions.add_parser("list", parents=[common], help="list the users, their limits and token ids")
    listing.add_argument("--json", action="store_true", help="print JSON instead of a table")
    remove = actions.add_parser("remove", parents=[common], help="remove a user (their runs stay)")
    passwd = actions.add_parser("passwd", parents=[common], help="give a user a new password")
    token = actions.add_parser("token", parents=[common], help="print a new API token for a user (shown once), or "
                               "revoke one")
    token.add_argument("--revoke", metavar="TOKEN_ID", help="end the token with this id (see `studio users list`)")
    limit = actions.add_parser("limit", parents=[common], help="set (or show) a user's limits")
    for flag, words in (("--max-runs", "runs at once (more wait in the queue)"),
                        ("--max-upload-mb", "largest upload in MB"), ("--max-disk-gb", "disk their runs may use")):
        limit.add_argument(flag, type=int, default=None, metavar="N", help=words)
    for parser in (add, remove, passwd, token, limit):
        parser.add_argument("name", metavar="NAME")
    for parser in (add, passwd):
        parser.add_argument("--password-stdin", action="store_true", help="read the password from stdin's first "
                            "line instead of asking (for scripts)")
    users.set_defaults(func=lambda args: cmd_users(args, fail))
    trail = sub.add_parser("audit", parents=[common], help="read the audit trail: logins, changes to accounts")
    trail.add_argument("--user", metavar="NAME", help="only this user's lines")
    trail.add_argument("--since", metavar="SPAN", help="only the last SPAN: 30m, 1h, 2d, 1w")
    trail.add_argument("--json", action="store_true", help="one JSON object per line")
    trail.set_defaults(func=lambda args: cmd_audit(args, fail))
