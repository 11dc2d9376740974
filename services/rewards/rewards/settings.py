"""Rewards' settings (environment variables prefixed ``REWARDS_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class RewardsSettings(ServiceSettings):
    """Rewards owns the ``rewards`` schema and connects as the ``rewards_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="REWARDS_", extra="ignore", frozen=True)

    service_name: str = "rewards"
    db_schema: str = "rewards"
    database_url: str = "postgresql://rewards_svc@127.0.0.1:5432/crm"
    # Points of the sign-up rule rewards makes for each new tenant (0: no sign-up rule).
    welcome_points: int = Field(default=100, ge=0)
    # How long earned points last before they expire (each credit is a lot with this expiry).
    points_ttl_days: int = Field(default=365, ge=1)
    # How often the service expires due lots; 0 turns the loop off (another process does it).
    expiry_interval_seconds: float = Field(default=300.0, ge=0)
    # How often every tenant's ledger invariants are checked (the rewards_ledger_* metrics).
    ledger_check_interval_seconds: float = Field(default=300.0, ge=0)
    # How often tiers are recomputed as windows roll past old activity; 0 turns it off.
    tier_interval_seconds: float = Field(default=3600.0, ge=0)
    # How long an unlinked profile's trigger events wait for a link before they no longer pay.
    pending_trigger_days: int = Field(default=90, ge=1)
    # How often pending triggers past that age are deleted; 0 turns the loop off.
    pending_prune_interval_seconds: float = Field(default=3600.0, ge=0)
    # Where referral links point unless a tenant's program says otherwise (the code is appended).
    referral_link_base: str = "https://refer.social-crm.local/r/"
