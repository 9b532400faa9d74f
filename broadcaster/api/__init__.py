"""`/api/v1`: the HTTP face of the operations layer (FastAPI), mounted by `broadcaster.web`."""

from broadcaster.api.app import make_api

__all__ = ["make_api"]
