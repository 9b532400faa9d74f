"""The console's languages: Vietnamese first, English on request (gettext via Babel).

Templates and messages are written with English message ids; the catalogues
in `locale/{vi,en}/LC_MESSAGES/messages.po` are compiled to `.mo` files that
ship with the package (`scripts/console-catalogues` rebuilds them). One Jinja
environment per language, built once, so rendering never swaps translations
under a concurrent request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

HERE = Path(__file__).parent
LOCALES = HERE / "locale"
TEMPLATES = HERE / "templates"
LANGUAGES: Mapping[str, str] = {"vi": "Tiếng Việt", "en": "English"}
DEFAULT = "vi"
COOKIE = "console_lang"


def choose(requested: str | None) -> str:
    """The language to answer in: a known one asked for, else Vietnamese."""
    return requested if requested is not None and requested in LANGUAGES else DEFAULT


def translations(lang: str) -> NullTranslations:
    """The compiled catalogue of a language (an empty one when it is missing)."""
    return Translations.load(str(LOCALES), [lang], domain="messages")


class Renderer:
    """Render templates in one of the console's languages."""

    def __init__(
        self,
        tz: ZoneInfo,
        globals_: Mapping[str, Any] | None = None,
        words: Callable[[Callable[[str], str]], Mapping[str, Any]] | None = None,
    ) -> None:
        """`words(gettext)` gives translated globals (role and state names) per language."""
        self.tz = tz
        self._catalogues = {lang: translations(lang) for lang in LANGUAGES}
        self._envs = {lang: self._environment(lang, globals_ or {}) for lang in LANGUAGES}
        for lang, env in self._envs.items():
            env.globals.update((words or (lambda _: {}))(self.gettext(lang)))

    def render(self, lang: str, name: str, context: Mapping[str, Any]) -> str:
        return self._envs[choose(lang)].get_template(name).render(context)

    def gettext(self, lang: str) -> Callable[[str], str]:
        """The translation function of a language, for messages built in Python."""
        return self._catalogues[choose(lang)].gettext

    def _environment(self, lang: str, globals_: Mapping[str, Any]) -> Environment:
        env = Environment(
            loader=FileSystemLoader(str(TEMPLATES)),
            autoescape=select_autoescape(["html", "svg"]),
            extensions=["jinja2.ext.i18n"],
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.install_gettext_translations(self._catalogues[lang], newstyle=True)  # type: ignore[attr-defined]
        env.globals.update(globals_)
        env.globals["lang"] = lang
        env.globals["languages"] = LANGUAGES
        env.filters["local"] = self._local
        env.filters["number"] = lambda value: _number(value, lang)
        return env

    def _local(self, moment: datetime | None, fmt: str = "%d/%m/%Y %H:%M") -> str:
        """A stored UTC time in the configured zone, day first as read in Vietnam."""
        return moment.astimezone(self.tz).strftime(fmt) if moment else "—"


def _number(value: int | float | Decimal | None, lang: str) -> str:
    """Group digits the way each language reads them (1.234.567 in Vietnamese)."""
    if value is None:
        return "—"
    return format_decimal(value, locale="vi_VN" if lang == "vi" else "en_GB")
