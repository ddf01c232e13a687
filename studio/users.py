"""The studio's accounts: <workspace>/users.json (mode 0600), read and written whole under a file lock so that two
processes (a `studio users` command beside a running studio) never lose each other's change.

What is kept of a secret is never the secret: passwords as argon2id hashes, API tokens (32 random bytes) as their
SHA-256 beside a short id that names the token in lists and revocations. A token needs no slow hash: it is random,
so no one can guess it from its digest, and a fast lookup lets every API request check one."""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import os
import re
import secrets
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Iterator

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from studio.errors import UserError, first_line
from studio.runfolder import atomic

FILE = "users.json"
LOCK = ".users.lock"
# A name is also a folder name later (a user's uploads): letters, digits and . _ @ -, starting with a letter or
# digit, never '..'.
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
LIMIT_NAMES = {"max_runs": "runs at once", "max_upload_mb": "MB per upload", "max_disk_gb": "GB of disk"}

_hasher = PasswordHasher()


class AccountError(UserError):
    """A name, password or account the store cannot take; the message says why."""


@dataclass
class Limits:
    max_runs: int = 2
    max_upload_mb: int = 2048
    max_disk_gb: int = 50


@dataclass
class User:
    name: str
    password_hash: str
    admin: bool = False
    created: float = field(default_factory=time.time)
    limits: Limits = field(default_factory=Limits)
    tokens: list[dict] = field(default_factory=list)  # {"id", "sha256", "created"}

    @property
    def is_admin(self) -> bool:
        return self.admin

    @classmethod
    def from_dict(cls, data: dict) -> User:
        """Keys this version does not know (written by a later one) are left out, not fatal."""
        known = {f.name for f in fields(cls)} - {"limits"}
        limits = {k: v for k, v in data.get("limits", {}).items() if k in LIMIT_NAMES}
        return cls(**{k: v for k, v in data.items() if k in known}, limits=Limits(**limits))


def check_name(name: str) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        shown = repr(name)[:70]
        raise AccountError(f"{shown} cannot be a user name: use 1 to 64 letters, digits, '.', '_', '@' or '-', "
                           "starting with a letter or digit (no '/', no spaces, no '..').")
    return name


def check_password(password: str) -> str:
    if not password:
        raise AccountError("The password is empty: give a password of at least one character.")
    return password


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Users:
    """The accounts of one workspace. Every method reads the file afresh: another process may have changed it."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()
        self.path = self.root / FILE

    # -- reading --------------------------------------------------------------------------------------------------

    def _load(self) -> dict[str, User]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return {name: User.from_dict(user) for name, user in data["users"].items()}
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AccountError(f"{self.path} cannot be read ({first_line(exc)}): restore it from a backup, or "
                               "remove it to start the accounts afresh.") from None

    def exist(self) -> bool:
        """Whether any account exists (then the studio asks for a login)."""
        return bool(self._load())

    def all(self) -> list[User]:
        return sorted(self._load().values(), key=lambda u: u.name)

    def get(self, name: str) -> User | None:
        return self._load().get(name)

    def require(self, name: str) -> User:
        return self._known(self._load(), name)

    def verify_password(self, name: str, password: str) -> bool:
        """True when the password is this user's. An unknown name costs the same hashing as a known one, so the
        time taken does not tell which names exist."""
        user = self.get(name) if isinstance(name, str) else None
        stored = user.password_hash if user else _dummy_hash()
        try:
            ok = _hasher.verify(stored, password or "") and user is not None
        except (VerificationError, InvalidHashError):
            return False
        if ok and _hasher.check_needs_rehash(stored):  # the hasher's parameters were raised since
            with self._changing() as users:
                if name in users:  # not removed meanwhile
                    users[name].password_hash = _hasher.hash(password)
        return ok

    def verify_token(self, token: str) -> str | None:
        """The name of the user an API token belongs to, None for an unknown or revoked token."""
        if not token:
            return None
        digest = token_digest(token)
        for user in self._load().values():
            if any(hmac.compare_digest(digest, t["sha256"]) for t in user.tokens):
                return user.name
        return None

    # -- changing -------------------------------------------------------------------------------------------------

    def add(self, name: str, password: str, admin: bool = False) -> User:
        check_name(name)
        check_password(password)
        with self._changing() as users:
            if name in users:
                raise AccountError(f"A user called {name!r} exists already (`studio users passwd {name}` gives "
                                   "them a new password).")
            users[name] = User(name, _hasher.hash(password), admin=admin)
            return users[name]

    def remove(self, name: str) -> None:
        with self._changing() as users:
            self._known(users, name)
            del users[name]

    def set_password(self, name: str, password: str) -> None:
        check_password(password)
        with self._changing() as users:
            self._known(users, name).password_hash = _hasher.hash(password)

    def new_token(self, name: str) -> tuple[str, str]:
        """(token id, token): the token is shown once and only its SHA-256 is kept."""
        token = secrets.token_urlsafe(32)
        token_id = secrets.token_hex(4)
        with self._changing() as users:
            self._known(users, name).tokens.append({"id": token_id, "sha256": token_digest(token),
                                                    "created": time.time()})
        return token_id, token

    def revoke_token(self, name: str, token_id: str) -> None:
        with self._changing() as users:
            user = self._known(users, name)
            kept = [t for t in user.tokens if t["id"] != token_id]
            if len(kept) == len(user.tokens):
                ids = ", ".join(t["id"] for t in user.tokens) or "none"
                raise AccountError(f"{name} has no token with the id {token_id!r} (their tokens: {ids}).")
            user.tokens = kept

    def set_limits(self, name: str, **limits: int | None) -> Limits:
        """Changes the limits given (None: unchanged); each must be a whole number of at least 1."""
        for key, value in limits.items():
            if key not in LIMIT_NAMES:
                raise AccountError(f"{key} is not a limit; the limits are {', '.join(LIMIT_NAMES)}.")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise AccountError(f"{key.replace('_', '-')} must be a whole number of at least 1 "
                                   f"({LIMIT_NAMES[key]}), not {value!r}.")
        with self._changing() as users:
            user = self._known(users, name)
            for key, value in limits.items():
                if value is not None:
                    setattr(user.limits, key, value)
            return user.limits

    def _known(self, users: dict[str, User], name: str) -> User:
        if name not in users:
            raise AccountError(f"There is no user called {name!r}: `studio users list` lists them.")
        return users[name]

    @contextlib.contextmanager
    def _changing(self) -> Iterator[dict[str, User]]:
        """The accounts to change in place, written back (atomically, mode 0600) when the block ends without an
        error; the lock keeps other processes' changes out meanwhile."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, or the process dies
            users = self._load()
            yield users
            text = json.dumps({"users": {name: asdict(user) for name, user in sorted(users.items())}}, indent=1)
            with atomic(self.path) as tmp:
                descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(descriptor, "w", encoding="utf-8") as f:
                    f.write(text)


_DUMMY: list[str] = []


def _dummy_hash() -> str:
    """A hash of no one's password, for checking unknown names as slowly as known ones."""
    if not _DUMMY:
        _DUMMY.append(_hasher.hash(secrets.token_hex(16)))
    return _DUMMY[0]
