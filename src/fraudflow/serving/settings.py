"""The service's settings: built once at the edge (the CLI, a test), checked when built."""

from __future__ import annotations

from dataclasses import dataclass

from fraudflow.errors import ConfigError
from fraudflow.records import US_PER_DAY

#: The largest request body the service reads by default.
MAX_BODY_BYTES = 1 << 20
#: The variable that gives each worker process (``uvicorn --factory``) the settings, as JSON.
SETTINGS_ENV = "FRAUDFLOW_SERVE_SETTINGS"


@dataclass(frozen=True)
class Settings:
    """What the service serves and how; refuses unsafe or impossible values."""

    data: str
    endpoint_url: str | None = None  # an s3:// lake's S3-compatible endpoint (None: the environment's)
    model_id: str | None = None
    online: str | None = None  # None: SQLite in the lake root
    api_key: str | None = None
    threshold: float | None = None  # None: the one stored with the model for its alert budget, else 0.5
    max_body_bytes: int = MAX_BODY_BYTES
    production_poll_seconds: float = 10.0  # how often to look for a new production model (0: never)
    # how long a TRANSACTION_ID sent again gets its first answer (None: 1 day; at most the store's log)
    answers_window_days: float | None = None

    def __post_init__(self) -> None:
        if self.threshold is not None and not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be within 0..1, got {self.threshold}")
        if self.api_key is not None and len(self.api_key) < 16:
            raise ConfigError("an API key must be at least 16 characters")
        if not self.production_poll_seconds >= 0:
            raise ConfigError(f"the production poll must be >= 0 seconds, got {self.production_poll_seconds}")
        if self.answers_window_days is not None and not self.answers_window_days > 0:
            raise ConfigError(f"the answers window must be positive, got {self.answers_window_days} days")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")

    @property
    def answers_us(self) -> int | None:
        """The answers window in microseconds (None: the store's default)."""
        return None if self.answers_window_days is None else round(self.answers_window_days * US_PER_DAY)
