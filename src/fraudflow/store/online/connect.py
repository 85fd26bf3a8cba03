"""``open_store``: the online store a URL names."""

from __future__ import annotations

import os

from fraudflow.errors import ConfigError
from fraudflow.store.online.interface import OnlineStore
from fraudflow.store.online.memory import MemoryStore
from fraudflow.store.online.redis import RedisStore
from fraudflow.store.online.sqlite import SQLiteStore

#: The SQLite file in a local lake root, the store when no URL is given.
SQLITE_FILE = "online.sqlite"


def open_store(url: str | None, root_path: str | None = None) -> OnlineStore:
    """``redis://…``, ``sqlite:///path``, ``memory://``, or None: SQLite in the (local) lake root."""
    if url is None or url.startswith("sqlite://"):
        if url is None:
            if root_path is None:
                raise ConfigError("no online store: give --online or a local lake root")
            path = os.path.join(root_path, SQLITE_FILE)
        else:
            path = url.removeprefix("sqlite://")
        return SQLiteStore(path)
    if url.startswith(("redis://", "rediss://", "unix://")):
        return RedisStore(url)
    if url == "memory://":
        return MemoryStore()
    raise ConfigError(f"unknown online store {url!r}; expected redis://…, sqlite:///path or memory://")
