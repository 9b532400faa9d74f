"""Config keys from the environment and from systemd credentials, over the file.

Every key of config.toml has a variable named for its path: `BROADCASTER_`
and the path's parts in upper case joined by `_`, a `-` in a name becoming
`_` (`BROADCASTER_SMS_MAX_PARTS`, `BROADCASTER_AUDIO_TOKEN_SECRET`,
`BROADCASTER_CARRIERS_VIETTEL_PASSWORD`, `BROADCASTER_PLANNER_GRACE_SMS`).
Lists and tables take JSON (`BROADCASTER_SMS_TEST_NUMBERS='["0912345678"]'`).
The same key may come from a file in systemd's `$CREDENTIALS_DIRECTORY`
named by its dotted path (`carriers.viettel.password`, `audio.token_secret`),
so secrets stay out of the file and the environment. The environment wins
over a credential, a credential over the file.

Names are generated from the settings model, never parsed from variables, so
an underscore inside a key (`max_parts`) is not mistaken for nesting. Each
value remembers where it came from, so a bad one is blamed on its variable or
credential file rather than on config.toml.
"""

from __future__ import annotations

import json
import types
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

from broadcaster.essentials import CREDENTIALS, ENV_PREFIX

Path_ = tuple[str, ...]


@dataclass(frozen=True)
class Key:
    """One settable key: its path in the settings and the type it must parse to."""

    path: Path_
    annotation: Any

    @property
    def variable(self) -> str:
        return ENV_PREFIX + "_".join(self.path).upper().replace("-", "_")

    @property
    def dotted(self) -> str:
        return ".".join(self.path)

    @property
    def structured(self) -> bool:
        """Whether the value is a list or table, given as JSON rather than as text."""
        return any(
            get_origin(t) in (list, dict, tuple, set) or model_of(t) is not None
            for t in options_of(self.annotation)
        )


class OverrideError(ValueError):
    """A variable or credential that cannot be read; the message names it."""


def keys(
    model: type[BaseModel], raw: Mapping[str, Any], environ: Mapping[str, str], path: Path_ = ()
) -> Iterator[Key]:
    """Every key of `model`, parents before children; the entries of a table keyed
    by name (carriers, ladders) are those in the file plus those the environment names."""
    for name, field in model.model_fields.items():
        here = (*path, name)
        yield Key(here, field.annotation)
        inner = raw.get(name) if isinstance(raw, Mapping) else None
        yield from _inside(
            field.annotation, inner if isinstance(inner, Mapping) else {}, environ, here
        )


def _inside(
    annotation: Any, raw: Mapping[str, Any], environ: Mapping[str, str], path: Path_
) -> Iterator[Key]:
    for option in options_of(annotation):
        if (sub := model_of(option)) is not None:
            yield from keys(sub, raw, environ, path)
        elif get_origin(option) is dict:
            key_type, value_type = get_args(option)
            names = list(raw)
            if get_origin(key_type) is Literal:
                names += [k for k in get_args(key_type) if k not in names]
            if (value_model := model_of(value_type)) is not None:
                known = {Key((*path, n), None).variable for n in names}
                names += [
                    n
                    for n in _named_in_environ(path, value_model, environ)
                    if Key((*path, n), None).variable not in known
                ]
            for name in names:
                here = (*path, name)
                yield Key(here, value_type)
                inner = raw.get(name)
                yield from _inside(
                    value_type, inner if isinstance(inner, Mapping) else {}, environ, here
                )


def _named_in_environ(path: Path_, model: type[BaseModel], environ: Mapping[str, str]) -> list[str]:
    """Entries only the environment names: BROADCASTER_CARRIERS_<NAME>_<KEY>."""
    head = Key(path, None).variable + "_"
    tails = sorted((f"_{k.upper()}" for k in model.model_fields), key=len, reverse=True)
    found = []
    for variable in environ:
        if variable.startswith(head):
            rest = variable.removeprefix(head)
            tail = next((t for t in tails if rest.endswith(t) and len(rest) > len(t)), None)
            if tail is not None:
                found.append(rest.removesuffix(tail).lower())
    return sorted(set(found))


def apply(
    model: type[BaseModel], raw: dict[str, Any], environ: Mapping[str, str]
) -> dict[Path_, str]:
    """Write credentials, then environment variables, over the file's `raw` values;
    return where each overridden path came from, for error messages."""
    sources: dict[Path_, str] = {}
    settable = list(keys(model, raw, environ))
    folder = environ.get(CREDENTIALS)
    if folder:
        for key in settable:
            file = Path(folder) / key.dotted
            if file.is_file():
                origin = f"credential {file}"
                _put(raw, key.path, _parse(key, _read_credential(file), origin))
                sources[key.path] = origin
    for key in settable:
        if key.variable in environ:
            origin = f"environment variable {key.variable}"
            _put(raw, key.path, _parse(key, environ[key.variable], origin))
            sources[key.path] = origin
    return sources


def blame(loc: tuple[Any, ...], sources: Mapping[Path_, str]) -> str | None:
    """The variable or credential a validation error at `loc` comes from, if any."""
    parts = tuple(str(p) for p in loc)
    for n in range(len(parts), 0, -1):
        if parts[:n] in sources:
            return sources[parts[:n]]
    return None


def _read_credential(file: Path) -> str:
    """A credential's value: the file without its trailing newline; empty is refused,
    since an empty secret is a forgotten one, not a choice."""
    value = file.read_text(encoding="utf-8").removesuffix("\n")
    if not value:
        raise OverrideError(f"credential {file}: the file is empty; put the value in it")
    return value


def _parse(key: Key, text: str, origin: str) -> Any:
    if not key.structured:
        return text
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise OverrideError(
            f"{origin}: {key.dotted} takes JSON (a list or table), not valid here: {exc}"
        ) from None


def _put(raw: MutableMapping[str, Any], path: Path_, value: Any) -> None:
    node = raw
    for part in path[:-1]:
        child = node.get(part)
        if not isinstance(child, MutableMapping):
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def options_of(annotation: Any) -> tuple[Any, ...]:
    """The alternatives of a union (`X | None` gives X), else the annotation itself."""
    if get_origin(annotation) in (Union, types.UnionType):
        return tuple(a for a in get_args(annotation) if a is not type(None))
    return (annotation,)


def model_of(annotation: Any) -> type[BaseModel] | None:
    is_model = isinstance(annotation, type) and issubclass(annotation, BaseModel)
    return annotation if is_model else None
