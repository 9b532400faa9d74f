"""Accounts, roles and what each may do: the rules, as pure functions over values.

An account acts for people, never a typed name: the CLI maps the Unix login
to an account, the API a bearer token, the console a session. What an
account may do depends on its role (one table, `ROLE_ACTIONS`) and on where:
an account acts only on its areas and the areas below them. Identity is the
account id; names are compared only to refuse look-alikes when accounts are
made (`name_key`), never to decide who approved what.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from broadcaster.areas import AreaRegistry

MAX_NAME = 128


class Role(StrEnum):
    """Operators draft and set levels, approvers approve, admins manage accounts."""

    OPERATOR = "operator"
    APPROVER = "approver"
    ADMIN = "admin"


class Action(StrEnum):
    """Everything an account may be allowed to do; audit rows name these."""

    READ = "read"
    SET_LEVEL = "level.set"
    DRAFT_BLAST = "sms.draft"
    APPROVE_BLAST = "sms.approve"
    CANCEL_BLAST = "sms.cancel"
    CORRECT_BLAST = "sms.correct"
    ISSUE_NOTICE = "notice.issue"
    APPROVE_NOTICE = "notice.approve"
    RETRACT_NOTICE = "notice.retract"
    IMPORT_CLIP = "audio.import"
    APPROVE_CLIP = "audio.approve"
    WITHDRAW_CLIP = "audio.withdraw"
    APPROVE_SCHEDULE = "schedule.approve"
    MANAGE_ACCOUNTS = "accounts.manage"


# Stopping (cancel, retract) is open to every role that may start something there:
# stopping must be faster than sending. Approvers may also draft, so that two
# approvers on duty can release an alert between them.
_OPERATE = frozenset(
    {
        Action.READ,
        Action.SET_LEVEL,
        Action.DRAFT_BLAST,
        Action.CANCEL_BLAST,
        Action.CORRECT_BLAST,
        Action.ISSUE_NOTICE,
        Action.RETRACT_NOTICE,
        Action.IMPORT_CLIP,
        Action.WITHDRAW_CLIP,
    }
)
ROLE_ACTIONS: dict[Role, frozenset[Action]] = {
    Role.OPERATOR: _OPERATE,
    Role.APPROVER: _OPERATE
    | {Action.APPROVE_BLAST, Action.APPROVE_NOTICE, Action.APPROVE_SCHEDULE, Action.APPROVE_CLIP},
    Role.ADMIN: frozenset(
        {
            Action.READ,
            Action.MANAGE_ACCOUNTS,
            Action.CANCEL_BLAST,
            Action.RETRACT_NOTICE,
            Action.WITHDRAW_CLIP,
        }
    ),
}


class Refused(Exception):
    """No account may act here: none is established, or it may not do this."""


class Forbidden(Refused):
    """The account may not do this; the message says what and why, for the person acting."""


class NotAuthenticated(Refused):
    """No account could be established for the request (no or a wrong credential)."""


@dataclass(frozen=True)
class Account:
    """A person's account as the rules see it; secrets stay in the store."""

    id: int
    name: str
    role: Role
    areas: frozenset[str]
    unix_login: str | None = None
    disabled: bool = False
    has_totp: bool = False

    def __post_init__(self) -> None:
        if not isinstance(self.role, Role):
            object.__setattr__(self, "role", Role(self.role))

    def as_json(self) -> dict[str, object]:
        """Return the account without secrets, for listings and the API."""
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role.value,
            "areas": sorted(self.areas),
            "unix_login": self.unix_login,
            "disabled": self.disabled,
            "has_totp": self.has_totp,
        }


_SPACES = re.compile(r"\s+")


def clean_name(raw: str) -> str:
    """Return a display name: NFC, format and control characters removed, spaces collapsed.

    Refuses an empty result, so `""`, `" "` or a lone zero-width space never name anyone.
    """
    text = unicodedata.normalize("NFC", raw)
    text = "".join(c for c in text if unicodedata.category(c) not in {"Cf", "Cc", "Cs", "Co"})
    text = _SPACES.sub(" ", text).strip()
    if not text:
        raise ValueError("a name must not be empty (nor only spaces or invisible characters)")
    if len(text) > MAX_NAME:
        raise ValueError(f"a name may have at most {MAX_NAME} characters, not {len(text)}")
    return text


def name_key(raw: str) -> str:
    """Return the identity key of a name: two names with one key are one person.

    NFKC folds compatibility forms (full-width letters, ligatures), NFD/NFC
    spellings meet, invisible characters and surrounding or repeated spaces go,
    and case is folded, so "Nguyễn Văn A " and "nguyễn văn a" are one key.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", clean_name(raw)).casefold())


def allowed(role: Role, action: Action) -> bool:
    """Return whether a role may take an action anywhere (before areas are considered)."""
    return action in ROLE_ACTIONS[role]


def covers(account: Account, registry: AreaRegistry, area: str) -> bool:
    """Return whether `area` is one of the account's areas or lies below one of them."""
    registry.get(area)
    if area in account.areas:
        return True
    return any(a.code in account.areas for a in registry.ancestors(area))


def check(
    account: Account, action: Action, registry: AreaRegistry, areas: Iterable[str] = ()
) -> None:
    """Refuse (raise `Forbidden`) unless the account may take `action` on every area given."""
    if account.disabled:
        raise Forbidden(f"account {account.name!r} is disabled")
    if not allowed(account.role, action):
        who = ", ".join(sorted(r.value for r in Role if allowed(r, action)))
        raise Forbidden(f"{account.name!r} is {account.role.value}; {action.value} is for: {who}")
    outside = [code for code in areas if not covers(account, registry, code)]
    if outside:
        raise Forbidden(
            f"{account.name!r} acts on {', '.join(sorted(account.areas)) or 'no area'} and the "
            f"areas below; not on {', '.join(outside)}"
        )


def check_second_account(
    approver: Account, drafted_by: int | None, drafted_name: str, what: str
) -> None:
    """Refuse approval by the account that drafted `what` (by id; by name for rows that
    predate accounts, where the name is all we have)."""
    if drafted_by is not None:
        same = drafted_by == approver.id
    else:
        try:
            same = name_key(drafted_name) == name_key(approver.name)
        except ValueError:
            same = True  # an anonymous draft cannot show it had a second person
    if same:
        raise Forbidden(
            f"{what} was drafted by {approver.name!r}; a second account must approve it"
        )


def check_grant(admin: Account, registry: AreaRegistry, areas: Iterable[str]) -> None:
    """Refuse an admin giving areas outside its own: no one widens their own reach."""
    check(admin, Action.MANAGE_ACCOUNTS, registry, areas)
