"""Accounts, their secrets, API tokens, and the append-only audit log.

Passwords are argon2 hashes; API tokens are shown once and kept as SHA-256
(a token is 256 random bits, so a fast hash loses nothing and lets a request
find its account by one indexed lookup). The audit table refuses UPDATE and
DELETE by trigger, like `level_changes`; every row names the account by id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pyotp
import structlog
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from broadcaster.accounts import Account, NotAuthenticated, Role, clean_name, name_key
from broadcaster.store.db import Bind, session_scope
from broadcaster.store.models import Base
from broadcaster.store.types import UTCDateTime

log = structlog.get_logger(__name__)
TOKEN_PREFIX = "bc_"
MAX_SECRET = 1024  # longer passwords and tokens are refused before hashing
MAX_FAILURES = 5  # failed logins in a row before the account is locked
LOCKOUT = timedelta(minutes=15)
_hasher = PasswordHasher()


class AccountRow(Base):
    """One account; `name_key` is unique so look-alike names cannot be two people."""

    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(128))
    name_key: Mapped[str] = mapped_column(String(256), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    areas: Mapped[str] = mapped_column(Text)
    unix_login: Mapped[str | None] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(Text)
    totp_secret: Mapped[str | None] = mapped_column(String(64))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    def to_account(self) -> Account:
        return Account(
            self.id,
            self.name,
            Role(self.role),
            frozenset(self.areas.split()),
            self.unix_login,
            bool(self.disabled),
            self.totp_secret is not None,
        )


class TokenRow(Base):
    """An API bearer token, stored as its SHA-256; revoked ones stay for the record."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AuditRow(Base):
    """One thing an account did. Append-only: triggers refuse UPDATE and DELETE."""

    __tablename__ = "audit"
    __table_args__ = (Index("ix_audit_at", "at"), Index("ix_audit_account", "account_id"))

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    account_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(256))
    detail: Mapped[str] = mapped_column(Text)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class AuditEntry:
    """One audit row as read back, with the account's name for display."""

    id: int
    account_id: int | None
    account: str | None
    action: str
    target: str
    detail: dict[str, Any]
    at: datetime

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "account_id": self.account_id,
            "account": self.account,
            "action": self.action,
            "target": self.target,
            "detail": self.detail,
            "at": self.at.isoformat(),
        }


class AccountError(ValueError):
    """An account operation that cannot be done as asked (duplicate name, no such account)."""


def add_account(
    bind: Bind,
    *,
    name: str,
    role: Role,
    areas: Sequence[str],
    unix_login: str | None,
    now: datetime,
) -> Account:
    """Create an account; a name with the same key as another is refused."""
    display = clean_name(name)
    if not areas:
        raise AccountError("an account needs at least one --area")
    row = AccountRow(
        name=display,
        name_key=name_key(display),
        role=Role(role).value,
        areas=" ".join(sorted(set(areas))),
        unix_login=unix_login or None,
        disabled=False,
        failed_logins=0,
        created_at=now,
    )
    try:
        with session_scope(bind) as session:
            clash = session.scalar(
                select(AccountRow).where(
                    (AccountRow.name_key == row.name_key)
                    | ((AccountRow.unix_login == unix_login) if unix_login else False)
                )
            )
            if clash is not None:
                raise AccountError(
                    f"account {clash.name!r} already has that name or Unix login "
                    f"({unix_login or display!r})"
                )
            session.add(row)
            session.flush()
            return row.to_account()
    except IntegrityError as exc:
        raise AccountError(f"account {display!r} already exists") from exc


def list_accounts(bind: Bind) -> list[Account]:
    with session_scope(bind) as session:
        return [r.to_account() for r in session.scalars(select(AccountRow).order_by(AccountRow.id))]


def get_account(bind: Bind, ref: str | int) -> Account:
    """Find an account by id, or by a name with the same key; refuse an unknown one."""
    with session_scope(bind) as session:
        return _row(session, ref).to_account()


def set_disabled(bind: Bind, ref: str | int, disabled: bool = True) -> Account:
    """Disable an account (and so its tokens and sessions); kept for the audit trail."""
    with session_scope(bind) as session:
        row = _row(session, ref)
        row.disabled = disabled
        return row.to_account()


def set_password(
    bind: Bind, ref: str | int, password: str, *, totp: bool | None = None
) -> str | None:
    """Set an account's password; `totp=True` makes a new TOTP secret and returns its
    provisioning URI (shown once), `False` removes it, `None` keeps it."""
    if not 8 <= len(password) <= MAX_SECRET:
        raise AccountError(f"a password needs 8 to {MAX_SECRET} characters")
    with session_scope(bind) as session:
        row = _row(session, ref)
        row.password_hash = _hasher.hash(password)
        row.failed_logins = 0
        row.locked_until = None
        if totp is False:
            row.totp_secret = None
        if totp:
            row.totp_secret = pyotp.random_base32()
            return pyotp.TOTP(row.totp_secret).provisioning_uri(
                name=row.name, issuer_name="broadcaster"
            )
    return None


def issue_token(bind: Bind, ref: str | int, *, label: str, now: datetime) -> str:
    """Make a bearer token for an account; only its hash is kept, so show it now."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with session_scope(bind) as session:
        row = _row(session, ref)
        session.add(
            TokenRow(
                account_id=row.id,
                token_sha256=_token_hash(token),
                label=label[:128],
                created_at=now,
            )
        )
    return token


def account_for_token(bind: Bind, token: str) -> Account:
    """The enabled account a live token belongs to, or `NotAuthenticated`."""
    if not token or len(token) > MAX_SECRET:
        raise NotAuthenticated("no valid bearer token")
    with session_scope(bind) as session:
        row = session.scalar(
            select(AccountRow)
            .join(TokenRow, TokenRow.account_id == AccountRow.id)
            .where(TokenRow.token_sha256 == _token_hash(token), TokenRow.revoked_at.is_(None))
        )
        if row is None or row.disabled:
            raise NotAuthenticated("the bearer token is unknown, revoked or its account disabled")
        return row.to_account()


def account_for_unix_login(bind: Bind, login: str) -> Account | None:
    """The account mapped to a Unix login, if any (disabled ones too: the caller refuses)."""
    with session_scope(bind) as session:
        row = session.scalar(select(AccountRow).where(AccountRow.unix_login == login))
        return row.to_account() if row else None


def authenticate(
    bind: Bind, name: str, password: str, totp: str | None, *, now: datetime
) -> Account:
    """Check a name, password and (when the account has one) TOTP code.

    Every failure raises the same `NotAuthenticated`, so an answer never
    tells which part was wrong; failures are counted and audited, and after
    `MAX_FAILURES` in a row the account is locked for `LOCKOUT` (even the
    right password is refused until then).
    """
    failure = NotAuthenticated("wrong name, password or code")
    try:
        key = name_key(name)
    except ValueError:
        raise failure from None
    with session_scope(bind) as session:
        row = session.scalar(select(AccountRow).where(AccountRow.name_key == key))
        locked = row is not None and row.locked_until is not None and row.locked_until > now
        ok = (
            row is not None
            and not locked
            and not row.disabled
            and row.password_hash is not None
            and len(password) <= MAX_SECRET
            and _verify(row.password_hash, password)
            and (row.totp_secret is None or _totp_ok(row.totp_secret, totp))
        )
        if row is not None and not locked:
            row.failed_logins = 0 if ok else (row.failed_logins or 0) + 1
            if row.failed_logins >= MAX_FAILURES:
                row.locked_until, row.failed_logins = now + LOCKOUT, 0
        record_audit(
            session.connection(),
            row.id if row else None,
            "login" if ok else ("login.locked" if locked else "login.failed"),
            f"account:{row.id}" if row else "account:?",
            {"name": name[:128]},
            now=now,
        )
        if not ok or row is None:
            session.commit()
            raise failure
        return row.to_account()


def record_audit(
    bind: Bind,
    account_id: int | None,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None = None,
    *,
    now: datetime,
) -> None:
    """Append one audit row; pass the operation's connection to keep it in its transaction."""
    with session_scope(bind) as session:
        session.add(
            AuditRow(
                account_id=account_id,
                action=action,
                target=target[:256],
                detail=json.dumps(dict(detail or {}), ensure_ascii=False, default=str),
                at=now,
            )
        )
    log.info("audit.recorded", account=account_id, action=action, target=target)


def load_audit(
    bind: Bind,
    *,
    since: datetime | None = None,
    account_id: int | None = None,
    limit: int = 200,
) -> list[AuditEntry]:
    """The newest audit rows first, optionally from a time or for one account."""
    query = (
        select(AuditRow, AccountRow.name)
        .outerjoin(AccountRow, AccountRow.id == AuditRow.account_id)
        .order_by(AuditRow.id.desc())
        .limit(max(1, min(limit, 10_000)))
    )
    if since is not None:
        query = query.where(AuditRow.at >= since)
    if account_id is not None:
        query = query.where(AuditRow.account_id == account_id)
    with session_scope(bind) as session:
        return [
            AuditEntry(r.id, r.account_id, name, r.action, r.target, json.loads(r.detail), r.at)
            for r, name in session.execute(query)
        ]


def admin_exists(bind: Bind) -> bool:
    """Whether an enabled admin account exists (the first one is made by the bootstrap path)."""
    with session_scope(bind) as session:
        return bool(
            session.scalar(
                select(func.count())
                .select_from(AccountRow)
                .where(AccountRow.role == Role.ADMIN.value, AccountRow.disabled.is_(False))
            )
        )


def revoke_tokens(bind: Bind, ref: str | int, *, now: datetime) -> int:
    """Revoke every live token of an account; returns how many."""
    with session_scope(bind) as session:
        row = _row(session, ref)
        result = session.execute(
            update(TokenRow)
            .where(TokenRow.account_id == row.id, TokenRow.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


def _row(session: Any, ref: str | int) -> AccountRow:
    if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
        row = session.get(AccountRow, int(ref))
    else:
        row = session.scalar(select(AccountRow).where(AccountRow.name_key == name_key(ref)))
    if row is None:
        raise AccountError(f"no account {ref!r}; `broadcaster users list` shows them")
    return row


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _totp_ok(secret: str, code: str | None) -> bool:
    return bool(code) and pyotp.TOTP(secret).verify(code.strip(), valid_window=1)  # type: ignore[union-attr]
