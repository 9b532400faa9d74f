"""Station tokens: derived from one secret, so nothing per station is stored.

A token is an HMAC of the station code under the secret; checking one needs
no database and rotating the secret revokes every token at once. The secret
comes from config (`audio.token_secret`) or is generated once into the
database, so every node issues and accepts the same tokens (item URLs carry
them: a node of its own secret would serve other bytes). A secret an older
version generated into the data directory is carried over, so stations keep
their tokens.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import Engine

from broadcaster.store.published import token_secret

SECRET_FILE = "station-token-secret"


@dataclass(frozen=True)
class Tokens:
    """Issue and check station tokens; `repr` never shows the secret."""

    secret: bytes = field(repr=False)
    _issued: dict[str, str] = field(default_factory=dict, init=False, repr=False, compare=False)

    def for_station(self, station: str) -> str:
        """Return the station's token; remembered, since every item URL carries it."""
        token = self._issued.get(station)
        if token is None:
            token = hmac.new(self.secret, station.encode(), hashlib.sha256).hexdigest()[:32]
            self._issued[station] = token
        return token

    def valid_for(self, station: str, token: str) -> bool:
        return hmac.compare_digest(self.for_station(station), token)


def load_tokens(configured: str | None, data_dir: Path, engine: Engine) -> Tokens:
    """Use the configured secret, else the database's, stored on first use (the one an
    older version left in `data_dir`, if any)."""
    if configured:
        return Tokens(configured.encode())
    path = data_dir / SECRET_FILE
    legacy = path.read_text().strip() if path.exists() else None
    return Tokens(token_secret(engine, legacy).encode())
