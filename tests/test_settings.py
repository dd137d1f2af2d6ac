"""Settings: `CABINET_*` variables, defaults, and the refusal to run production on a weak secret."""

import os
import subprocess
import sys
import time
from pathlib import Path

import opentelemetry.trace
import pytest
from httpx import ASGITransport, AsyncClient
from pydantic import ValidationError

from api.main import create_app
from api.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
STRONG_KEY = "k" * 32


@pytest.fixture(autouse=True)
def no_cabinet_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what a test sets reaches the settings."""
    for name in list(os.environ):
        if name.startswith("CABINET_") and not name.startswith("CABINET_TEST_"):
            monkeypatch.delenv(name)


def test_defaults_need_no_configuration() -> None:
    settings = Settings(_env_file=None)
    assert settings.env == "development"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8000, 1)
    assert settings.mongodb_url is None
    assert (settings.access_token_ttl, settings.refresh_token_ttl) == (900, 30 * 86_400)
    assert (settings.signup, settings.login_rate) == ("open", "10/minute")
    assert settings.login_limit == (10, 60)
    assert settings.cors_origins == []


def test_settings_come_from_cabinet_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {
        "CABINET_PORT": "9123",
        "CABINET_WORKERS": "3",
        "CABINET_MONGODB_URL": "mongodb://db.example:27017",
        "CABINET_DATABASE": "other",
        "CABINET_SIGNUP": "closed",
        "CABINET_LOGIN_RATE": "5/hour",
        "CABINET_ACCESS_TOKEN_TTL": "60",
    }.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert (settings.port, settings.workers, settings.database) == (9123, 3, "other")
    assert settings.mongodb_url == "mongodb://db.example:27017"
    assert settings.signup == "closed"
    assert settings.login_limit == (5, 3600)
    assert settings.access_token_ttl == 60


def test_cors_origins_accept_a_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CABINET_CORS_ORIGINS", '["https://a.example", "https://b.example"]')
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


def test_cors_origins_accept_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CABINET_CORS_ORIGINS", "https://a.example, https://b.example")
    settings = Settings(_env_file=None)
    assert settings.cors_origins == ["https://a.example", "https://b.example"]


@pytest.mark.parametrize("secret", [None, "", "short", "k" * 31])
def test_production_refuses_a_missing_or_short_secret(secret: str | None) -> None:
    with pytest.raises(ValidationError, match="CABINET_SECRET_KEY"):
        Settings(_env_file=None, env="production", secret_key=secret)


def test_production_accepts_a_long_secret() -> None:
    settings = Settings(_env_file=None, env="production", secret_key=STRONG_KEY)
    assert settings.signing_key() == STRONG_KEY


def test_production_refuses_any_cors_origin() -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, env="production", secret_key=STRONG_KEY, cors_origins=["*"])


@pytest.mark.parametrize("rate", ["10/fortnight", "ten/minute", "10", "/minute"])
def test_malformed_login_rate_is_refused(rate: str) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, login_rate=rate)


def test_development_keeps_a_generated_signing_key_in_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(_env_file=None, data_dir=tmp_path / "data")
    key = settings.signing_key()
    assert len(key) >= 32
    assert (tmp_path / "data" / "secret-key").read_text().strip() == key
    assert (tmp_path / "data" / "secret-key").stat().st_mode & 0o077 == 0
    again = Settings(_env_file=None, data_dir=tmp_path / "data")
    assert again.signing_key() == key


@pytest.mark.parametrize("secret", [None, "short"])
def test_server_refuses_to_start_in_production_without_a_strong_secret(
    tmp_path: Path, secret: str | None
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CABINET_")}
    env |= {"CABINET_ENV": "production", "CABINET_DATA_DIR": str(tmp_path)}
    if secret is not None:
        env["CABINET_SECRET_KEY"] = secret
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "api"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0
    assert "CABINET_SECRET_KEY" in result.stderr
    assert "32" in result.stderr
    assert "Traceback" not in result.stderr
    assert time.monotonic() - started < 30
    assert not (tmp_path / "db").exists()  # refused before starting the database


@pytest.mark.parametrize("enabled", [True, False])
async def test_opentelemetry_setting_decides_whether_fastapi_looks_for_a_provider(
    enabled: bool, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # With it on, FastAPI asks for the global tracer provider on every request; off, never.
    asked: list[object] = []
    real = opentelemetry.trace.get_tracer_provider

    def counted() -> opentelemetry.trace.TracerProvider:
        asked.append(None)
        return real()

    monkeypatch.setattr(opentelemetry.trace, "get_tracer_provider", counted)
    settings = Settings(_env_file=None, data_dir=tmp_path, opentelemetry=enabled)
    transport = ASGITransport(app=create_app(settings))
    async with AsyncClient(transport=transport, base_url="http://cabinet.test") as http:
        assert (await http.get("/v1/no-such-route")).status_code == 404
    assert bool(asked) is enabled
