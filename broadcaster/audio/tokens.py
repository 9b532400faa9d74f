"""Station tokens: derived from one secret, so nothing per station is stored.

A token is an HMAC of the station code under the secret; checking one needs
no database and rotating the secret revokes every token at once. The secret
comes from config (`audio.token_secret`) or is generated once into the data
directory, readable by the daemon's user only.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path

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


def load_tokens(configured: str | None, data_dir: Path) -> Tokens:
    """Use the configured secret, else the one generated in `data_dir` on first use."""
    if configured:
        return Tokens(configured.encode())
    path = data_dir / SECRET_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return Tokens(path.read_text().strip().encode())
