"""The console's machinery: sessions, login, CSRF, security headers, rendering.

Every page handler receives the acting `Account` and calls the operations
layer; this module only decides who is asking (a session cookie), whether a
form is genuine (its CSRF token), and how answers look. Refusals from the
operations layer (`Forbidden`) become 403 pages with their message, bad
input 400 pages, so the console holds no rules of its own.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from hmac import compare_digest
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

import structlog
from markupsafe import escape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from broadcaster import operations
from broadcaster.accounts import Account, Forbidden, NotAuthenticated
from broadcaster.console.guard import LoginGuard
from broadcaster.console.i18n import COOKIE, HERE, Renderer, choose
from broadcaster.operations import Context, NotFound
from broadcaster.store import accounts as account_store
from broadcaster.store import sessions as session_store
from broadcaster.store.sessions import ConsoleSession, Lifetime

log = structlog.get_logger(__name__)
T = TypeVar("T")
SESSION_COOKIE = "console_session"
LOGIN_COOKIE = "console_login"  # double-submit CSRF token of the login form
MAX_FORM_BYTES = 64 * 1024
PREFIX = "/console"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    b"content-security-policy": CSP.encode(),
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"same-origin",
    b"cache-control": b"no-store",
    b"cross-origin-opener-policy": b"same-origin",
}

Handler = Callable[[Request, Account], Awaitable[Response]]


@dataclass
class Console:
    """What every console request shares: the operations context and the machinery."""

    ctx: Context
    renderer: Renderer
    guard: LoginGuard = field(default_factory=LoginGuard)
    lifetime: Lifetime = field(default_factory=Lifetime)
    secure_cookies: bool = False

    # --- running work off the event loop ----------------------------------------

    async def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking operation (database, planner) in the thread pool."""
        return await run_in_threadpool(partial(fn, *args, **kwargs))

    # --- rendering ---------------------------------------------------------------

    def lang(self, request: Request) -> str:
        return choose(request.cookies.get(COOKIE))

    def gettext(self, request: Request) -> Callable[[str], str]:
        return self.renderer.gettext(self.lang(request))

    def tr(self, request: Request, message: str) -> str:
        """Translate one message into the request's language."""
        return self.gettext(request)(message)

    def render(
        self, request: Request, template: str, status: int = 200, **context: Any
    ) -> HTMLResponse:
        session: ConsoleSession | None = getattr(request.state, "session", None)
        base = {
            "request": request,
            "path": request.url.path,
            "prefix": PREFIX,
            "account": getattr(request.state, "account", None),
            "csrf": session.csrf if session else context.pop("login_csrf", ""),
            "now": self.ctx.now(),
        }
        body = self.renderer.render(self.lang(request), template, {**base, **context})
        return HTMLResponse(body, status_code=status)

    def error(self, request: Request, status: int, message: str) -> HTMLResponse:
        _ = self.gettext(request)
        titles = {
            400: _("That cannot be done"),
            403: _("Not allowed"),
            404: _("Not found"),
            413: _("Too large"),
            429: _("Too many attempts"),
        }
        if request.headers.get("hx-request"):
            return HTMLResponse(
                f'<p class="error" role="alert">{escape(message)}</p>', status_code=status
            )
        return self.render(
            request, "error.html", status, title=titles.get(status, ""), message=message
        )

    # --- sessions and forms ------------------------------------------------------

    def page(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler: require a live session; POSTs need the session's CSRF token."""

        async def endpoint(request: Request) -> Response:
            found = await self.call(self._session_of, request)
            if found is None:
                return self._to_login(request)
            request.state.session, request.state.account = found
            if request.method == "POST":
                form = await self._form(request)
                if isinstance(form, Response):
                    return form
                if not self._csrf_ok(request, form, found[0].csrf):
                    log.warning("console.csrf_refused", account=found[1].id, path=request.url.path)
                    return self.error(
                        request,
                        403,
                        self.tr(
                            request,
                            "This form has expired or did not come from the console; "
                            "reload the page and try again.",
                        ),
                    )
                request.state.form = form
            try:
                return await handler(request, found[1])
            except Forbidden as exc:
                return self.error(request, 403, str(exc))
            except NotFound as exc:
                return self.error(request, 404, str(exc))
            except (ValueError, LookupError) as exc:
                return self.error(request, 400, str(exc))

        return endpoint

    def _session_of(self, request: Request) -> tuple[ConsoleSession, Account] | None:
        token = request.cookies.get(SESSION_COOKIE, "")
        engine = self.ctx.engine
        session = session_store.find_session(
            engine, token, now=self.ctx.now(), lifetime=self.lifetime
        )
        if session is None:
            return None
        try:
            account = account_store.get_account(engine, session.account_id)
        except account_store.AccountError:
            return None
        if account.disabled:
            session_store.end_sessions_of(engine, account.id, now=self.ctx.now())
            return None
        return session, account

    async def _form(self, request: Request) -> FormData | Response:
        length = request.headers.get("content-length")
        if length is None or not length.isdigit() or int(length) > MAX_FORM_BYTES:
            return self.error(request, 413, self.tr(request, "The form is too large."))
        return await request.form(max_files=0, max_fields=64, max_part_size=MAX_FORM_BYTES)

    @staticmethod
    def _csrf_ok(request: Request, form: FormData, expected: str) -> bool:
        given = form.get("csrf") or request.headers.get("x-csrf-token") or ""
        return isinstance(given, str) and bool(expected) and compare_digest(given, expected)

    def _to_login(self, request: Request) -> Response:
        target = f"{PREFIX}/login?next={quote(request.url.path)}"
        if request.headers.get("hx-request"):
            return Response(status_code=401, headers={"HX-Redirect": target})
        return RedirectResponse(target, status_code=303)

    def set_cookie(
        self,
        request: Request,
        response: Response,
        name: str,
        value: str,
        max_age: int | None = None,
    ) -> None:
        """HttpOnly, SameSite=Strict, scoped to the console; Secure over HTTPS (or always)."""
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=PREFIX,
            httponly=True,
            samesite="strict",
            secure=self.secure_cookies or request.url.scheme == "https",
        )

    # --- login, logout, language ------------------------------------------------

    async def login_form(self, request: Request) -> Response:
        token = secrets.token_urlsafe(24)
        response = self.render(
            request,
            "login.html",
            login_csrf=token,
            next=_safe_next(request.query_params.get("next")),
        )
        self.set_cookie(request, response, LOGIN_COOKIE, token, max_age=3600)
        return response

    async def login(self, request: Request) -> Response:
        _ = self.gettext(request)
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not self._csrf_ok(request, form, expected):
            return self.error(request, 403, _("The login form has expired; reload the page."))
        name, password = str(form.get("name", ""))[:256], str(form.get("password", ""))[:1024]
        code = str(form.get("code", "")).strip()[:16] or None
        client = request.client.host if request.client else "?"
        now = self.ctx.now()
        wait = self.guard.wait(client, now)
        if wait is not None:
            minutes = max(1, round(wait / timedelta(minutes=1)))
            log.warning("console.login_throttled", client=client)
            return self._login_again(
                request,
                expected,
                name,
                429,
                _("Too many failed attempts. Try again in {minutes} min.").format(minutes=minutes),
            )
        try:
            account = await self.call(operations.login, self.ctx, name, password, code)
        except NotAuthenticated:
            self.guard.failed(client, now)
            log.info("console.login_failed", client=client)
            return self._login_again(
                request,
                expected,
                name,
                401,
                _(
                    "Wrong name, password or code. After five failures "
                    "in a row the account is locked for 15 minutes."
                ),
            )
        token, _session = await self.call(
            session_store.open_session, self.ctx.engine, account.id, client=client, now=now
        )
        log.info("console.login", account=account.id, client=client)
        response = RedirectResponse(_safe_next(form.get("next")), status_code=303)
        self.set_cookie(request, response, SESSION_COOKIE, token)
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX)
        return response

    def _login_again(
        self, request: Request, token: str, name: str, status: int, message: str
    ) -> Response:
        return self.render(
            request,
            "login.html",
            status,
            login_csrf=token,
            name=name,
            message=message,
            next=_safe_next(request.query_params.get("next")),
        )

    async def logout(self, request: Request, account: Account) -> Response:
        await self.call(
            session_store.end_session,
            self.ctx.engine,
            request.cookies.get(SESSION_COOKIE, ""),
            now=self.ctx.now(),
        )
        log.info("console.logout", account=account.id)
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path=PREFIX)
        return response

    async def language(self, request: Request) -> Response:
        lang = choose(request.path_params["lang"])
        response = RedirectResponse(_safe_next(request.query_params.get("next")), status_code=303)
        self.set_cookie(request, response, COOKIE, lang, max_age=365 * 86400)
        return response


class SecurityHeaders:
    """Add the console's security headers to every response it sends."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in SECURITY_HEADERS.items() if k not in present]
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, with_headers)


def make_console(
    ctx: Context,
    *,
    secure_cookies: bool = False,
    guard: LoginGuard | None = None,
    lifetime: Lifetime | None = None,
) -> ASGIApp:
    """Build the console as an ASGI app to mount at `/console`."""
    from broadcaster.console import levels, notices, pages, schedules, sms

    registry = ctx.registry
    renderer = Renderer(
        ctx.settings.tz,
        {
            "area_depth": lambda code: len(registry.ancestors(code)),
            "currency": ctx.settings.sms.currency,
        },
        words,
    )
    console = Console(ctx, renderer, guard or LoginGuard(), lifetime or Lifetime(), secure_cookies)
    routes: list[BaseRoute] = [
        Route("/login", console.login_form, methods=["GET"]),
        Route("/login", console.login, methods=["POST"]),
        Route("/logout", console.page(console.logout), methods=["POST"]),
        Route("/lang/{lang}", console.language, methods=["GET"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
        *pages.routes(console),
        *levels.routes(console),
        *sms.routes(console),
        *notices.routes(console),
        *schedules.routes(console),
    ]
    return SecurityHeaders(Starlette(routes=routes))


def words(_: Callable[[str], str]) -> dict[str, Any]:
    """Names of roles, states and channels in the page's language."""
    return {
        "role_names": {
            "operator": _("operator"),
            "approver": _("approver"),
            "admin": _("administrator"),
        },
        "state_names": {
            "draft": _("awaiting approval"),
            "approved": _("approved"),
            "cancelled": _("cancelled"),
            "pending": _("awaiting approval"),
            "live": _("on air"),
            "retracted": _("retracted"),
            "ok": _("ok"),
            "late": _("late"),
            "offline": _("offline"),
            "unknown": _("never heard"),
            "queued": _("queued"),
            "sending": _("sending"),
            "submitted": _("submitted"),
            "delivered": _("delivered"),
            "failed": _("failed"),
            "expired": _("expired"),
            "total": _("total"),
        },
        "channel_names": {
            "loudspeaker": _("Loudspeaker"),
            "relay": _("Relay"),
            "van": _("Van"),
            "sms": _("SMS"),
            "task": _("Task"),
        },
    }


def _safe_next(value: object) -> str:
    """Only a path inside the console: never an open redirect to another site."""
    text = value if isinstance(value, str) else ""
    parts = urlsplit(text)
    if parts.scheme or parts.netloc or not text.startswith(PREFIX + "/") or "\\" in text:
        return PREFIX + "/"
    return text


def form_text(form: Mapping[str, Any], name: str, limit: int = 2000) -> str:
    """A text field, bounded; absent fields are empty."""
    value = form.get(name, "")
    return value[:limit] if isinstance(value, str) else ""
