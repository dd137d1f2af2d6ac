"""Every setting the service reads, from `CABINET_*` environment variables or an optional `.env`."""

import json
import secrets
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_LENGTH = 32
RATE = r"^\d{1,7}/(second|minute|hour|day)$"
WINDOWS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}


@lru_cache  # on every request's path (the rate budget)
def parse_rate(rate: str) -> tuple[int, int]:
    """ "10/minute" as (requests, window seconds)."""
    count, unit = rate.split("/")
    return int(count), WINDOWS[unit]


@lru_cache  # read once per directory: every request that carries a token needs it
def _kept_key(data_dir: Path) -> str:
    path = data_dir / "secret-key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(48))
    return path.read_text().strip()


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CABINET_", env_file=".env", extra="ignore")

    env: Literal["development", "production"] = "development"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    # Unset: `python -m api` starts the embedded MongoDB-compatible server under `data_dir`.
    mongodb_url: str | None = None
    database: str = Field(default="cabinet", pattern=r"^[A-Za-z0-9_-]{1,63}$")
    data_dir: Path = Path("data")
    secret_key: str | None = None
    admin_email: str | None = None
    admin_password: str | None = Field(default=None, min_length=8, max_length=256)
    access_token_ttl: int = Field(default=900, ge=30, le=86_400)
    refresh_token_ttl: int = Field(default=30 * 86_400, ge=60, le=365 * 86_400)
    signup: Literal["open", "closed"] = "open"
    login_rate: str = Field(default="10/minute", pattern=RATE)
    # Every other request, per signed-in user or API key, or per address when anonymous;
    # a bulk request or an import costs one per operation or row.
    rate_limit: str = Field(default="1200/minute", pattern=RATE)
    cors_origins: Annotated[list[str], NoDecode] = []
    # Addresses of reverse proxies whose X-Forwarded-For is believed; none by default.
    trusted_proxies: str = ""
    # In production /metrics answers admins and scrapers sending this as a bearer token.
    metrics_token: str | None = Field(default=None, min_length=16)
    issuer: str = "cabinet"
    audience: str = "cabinet-api"
    # JSON request bodies larger than this are refused with 413 (imports have their own limit).
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=1024**3)
    # Every database query carries this server-side limit (maxTimeMS); past it the client gets 504.
    query_timeout_ms: int = Field(default=5_000, ge=10, le=600_000)
    # An aggregation returning more is refused (400), never silently cut short.
    aggregate_max_results: int = Field(default=10_000, ge=1, le=1_000_000)
    aggregate_max_bytes: int = Field(default=32 * 2**20, ge=1024, le=2**30)
    # Import bodies are streamed, so this bounds the work of one request, not its memory.
    import_max_bytes: int = Field(default=1024**3, ge=1)
    # An export reads a whole (filtered) collection, so its query gets a longer server-side limit.
    export_timeout_ms: int = Field(default=300_000, ge=10, le=3_600_000)
    # FastAPI's own OpenTelemetry spans and metrics, for a deployment that sets up a provider.
    # Off, each request skips its check for one (Cabinet's /metrics is Prometheus either way).
    opentelemetry: bool = False

    @field_validator(
        "mongodb_url", "secret_key", "admin_email", "admin_password", "metrics_token", mode="before"
    )
    @classmethod
    def blank_is_unset(cls, value: object) -> object:
        # docker compose passes `${VAR:-}` as an empty string; that means "not set".
        return None if value == "" else value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            if value.lstrip().startswith("["):
                return json.loads(value)
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value

    @model_validator(mode="after")
    def refuse_weak_production(self) -> "Settings":
        if self.env == "production":
            if not self.secret_key or len(self.secret_key) < MIN_SECRET_LENGTH:
                raise ValueError(
                    f"CABINET_SECRET_KEY must be set to at least {MIN_SECRET_LENGTH} characters "
                    "in production (for example: python -c 'import secrets; "
                    "print(secrets.token_urlsafe(48))')"
                )
            if "*" in self.cors_origins:
                raise ValueError("CABINET_CORS_ORIGINS may not be '*' in production")
        return self

    @property
    def login_limit(self) -> tuple[int, int]:
        return parse_rate(self.login_rate)

    @property
    def request_limit(self) -> tuple[int, int]:
        return parse_rate(self.rate_limit)

    def signing_key(self) -> str:
        """The token signing secret; in development, one kept in the data directory.

        Keeping it on disk lets tokens survive a restart and lets every worker process share it.
        """
        return self.secret_key or _kept_key(self.data_dir)


@lru_cache
def get_settings() -> Settings:
    return Settings()
