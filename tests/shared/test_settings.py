"""Settings come from the environment, with defaults that work locally and fail fast in
production when a secret is left at its default."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from identity.settings import IdentitySettings
from rewards.settings import RewardsSettings


def test_each_service_reads_its_own_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REWARDS_WELCOME_POINTS", "250")
    monkeypatch.setenv("REWARDS_RETRY_DELAYS_MS", "[10, 20]")
    monkeypatch.setenv("IDENTITY_WELCOME_POINTS", "1")
    settings = RewardsSettings()
    assert settings.welcome_points == 250
    assert settings.max_attempts == 3
    assert settings.db_schema == "rewards"


def test_production_refuses_the_default_broker_account(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_ENVIRONMENT", "production")
    monkeypatch.setenv("IDENTITY_DATABASE_URL", "postgresql://identity_svc:s3cret@db:5432/crm")
    with pytest.raises(ValidationError, match="guest"):
        IdentitySettings()


def test_production_refuses_a_database_url_without_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENVIRONMENT", "production")
    monkeypatch.setenv("IDENTITY_AMQP_URL", "amqp://identity:s3cret@mq:5672/crm")
    with pytest.raises(ValidationError, match="password"):
        IdentitySettings()
    monkeypatch.setenv("IDENTITY_DATABASE_URL", "postgresql://identity_svc:s3cret@db:5432/crm")
    monkeypatch.setenv("IDENTITY_CONTACT_FINGERPRINT_SECRET", "f" * 32)
    with pytest.raises(ValidationError, match="rabbitmq_management_password"):
        IdentitySettings()  # the broker's management API (partners) has its own secret
    monkeypatch.setenv("IDENTITY_RABBITMQ_MANAGEMENT_PASSWORD", "s3cret")
    assert IdentitySettings().environment == "production"


def test_production_refuses_the_development_contact_fingerprint_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("IDENTITY_ENVIRONMENT", "production")
    monkeypatch.setenv("IDENTITY_AMQP_URL", "amqp://identity:s3cret@mq:5672/crm")
    monkeypatch.setenv("IDENTITY_DATABASE_URL", "postgresql://identity_svc:s3cret@db:5432/crm")
    with pytest.raises(ValidationError, match="contact_fingerprint_secret"):
        IdentitySettings()
    monkeypatch.setenv("IDENTITY_CONTACT_FINGERPRINT_SECRET", "too-short")
    with pytest.raises(ValidationError, match="contact_fingerprint_secret"):
        IdentitySettings()
