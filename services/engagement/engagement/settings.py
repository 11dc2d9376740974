"""Engagement's settings (environment variables prefixed ``ENGAGEMENT_``)."""

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from crm_shared.settings import ServiceSettings


class EngagementSettings(ServiceSettings):
    """Engagement owns the ``engagement`` schema and connects as the ``engagement_svc`` role."""

    model_config = SettingsConfigDict(env_prefix="ENGAGEMENT_", extra="ignore", frozen=True)

    service_name: str = "engagement"
    db_schema: str = "engagement"
    database_url: str = "postgresql://engagement_svc@127.0.0.1:5432/crm"
    # Meta webhooks: the app secret that signs deliveries (X-Hub-Signature-256), per tenant id
    # in meta_app_secrets (JSON object) or one for every tenant; unset refuses every delivery.
    meta_app_secret: str | None = None
    meta_app_secrets: dict[str, str] = Field(default_factory=dict)
    # The token Meta echoes in the subscription handshake (hub.verify_token); unset refuses it.
    meta_verify_token: str | None = None
    # py3langid's probability below which a text's language is "und" (short texts guess badly).
    language_min_confidence: float = 0.5
    # Items per transaction when ingesting NDJSON.
    ingest_batch_size: int = 500
    # Largest accepted request body of the JSON endpoints (NDJSON is streamed, no limit).
    ingest_max_body_bytes: int = 10_000_000
    # How often rule contests whose voting closed get their winners (0: never, staff choose).
    contest_winners_interval_seconds: float = 60.0

    # Care: which mentions open a case besides complaints and questions (those that mention
    # the brand, by a tracker or as a platform mention, with VADER's compound at most this).
    case_from_negative_mentions: bool = True
    case_mention_max_sentiment: float = Field(default=-0.5, ge=-1, le=0)
    # SLA targets in minutes per priority (first response, resolution), and per tenant id
    # overrides of any of them: {"<tenant id>": {"urgent": {"first_response": 30}}}.
    case_sla_minutes: dict[str, dict[str, int]] = Field(
        default_factory=lambda: {
            "urgent": {"first_response": 60, "resolution": 8 * 60},
            "high": {"first_response": 4 * 60, "resolution": 24 * 60},
            "normal": {"first_response": 8 * 60, "resolution": 48 * 60},
            "low": {"first_response": 24 * 60, "resolution": 72 * 60},
        }
    )
    case_sla_overrides: dict[str, dict[str, dict[str, int]]] = Field(default_factory=dict)
    # How often the SLA breach check runs; 0 turns it off (another process does it).
    case_breach_interval_seconds: float = Field(default=60.0, ge=0)
    # An item whose platform time is older than this is history (an import, a backfill):
    # stored and counted, but it opens, follows and answers no live case, and a share of it
    # is not announced for rewards. 0 takes every item as live.
    case_history_after_hours: float = Field(default=168.0, ge=0)
    # Trends (trends/spikes.py): the last complete hour against the hours before it; a spike
    # is a volume of at least trend_spike_min_volume above mean + k * stddev of the baseline.
    trend_spike_interval_seconds: float = Field(default=300.0, ge=0)
    trend_baseline_hours: int = Field(default=48, ge=2, le=720)
    trend_spike_k: float = Field(default=3.0, gt=0)
    trend_spike_min_volume: int = Field(default=10, ge=1)
    # Participation segments: every tenant's defaults (segmentSettings overrides them) and how
    # often every known customer is reclassified (new interactions reclassify at once).
    segment_window_days: int = Field(default=30, ge=1, le=365)
    segment_creator_min_originals: int = Field(default=3, ge=1)
    segment_occasional_min_contributions: int = Field(default=1, ge=1)
    segment_interval_seconds: float = Field(default=3600.0, ge=0)
    # Influence (influence/scoring.py): how often it is recomputed, PageRank's damping, the
    # score from which a customer is an influencer, and the mean sentiment of advocates and
    # detractors (over the last influence_sentiment_days).
    influence_interval_seconds: float = Field(default=3600.0, ge=0)
    influence_damping: float = Field(default=0.85, gt=0, lt=1)
    influence_min_score: float = Field(default=0.5, ge=0, le=1)
    influence_advocate_min_sentiment: float = Field(default=0.3, ge=-1, le=1)
    influence_detractor_max_sentiment: float = Field(default=-0.3, ge=-1, le=1)
    influence_sentiment_days: int = Field(default=90, ge=1)

    def meta_secret_for(self, tenant_id: str) -> str | None:
        """The Meta app secret that signs the tenant's webhooks."""
        return self.meta_app_secrets.get(tenant_id, self.meta_app_secret)
