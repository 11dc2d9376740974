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
    # After a request that stored at least this many new items the planner's statistics of
    # the interactions and their edges are refreshed (ANALYZE), so that the jobs' plans fit
    # the new volume (a new tenant's first import most of all); 0: never.
    ingest_analyze_after_rows: int = Field(default=10_000, ge=0)
    # The longest one statement of a periodic recomputation (influence) may run.
    job_statement_timeout_seconds: float = Field(default=120.0, gt=0)
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

    # Connectors (engagement/connectors): the key ring that seals platform tokens at rest
    # (Fernet keys; the first seals, all open; put a new key first to rotate). Unset: accounts
    # cannot be connected (connectStart answers FAILED_PRECONDITION).
    connector_token_keys: list[str] = Field(default_factory=list)
    # Each platform's app (OAuth client) as registered by the deployment:
    # {"x": {"client_id": "...", "client_secret": "..."}, "reddit": {...}, "youtube": {...}}.
    connector_apps: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Overrides of the platforms' URLs per channel ({"x": {"api": "http://127.0.0.1:9/x"}}):
    # keys api, authorize, token, revoke (engagement/connectors/platforms.py has the defaults).
    connector_urls: dict[str, dict[str, str]] = Field(default_factory=dict)
    # How often due accounts are pulled (0: never in this process), and the gap between two
    # pulls of one account.
    connector_sync_interval_seconds: float = Field(default=30.0, ge=0)
    connector_pull_every_seconds: float = Field(default=120.0, ge=0)
    # Items asked per page, and the pages one account may pull in one round (the rest next).
    connector_page_size: int = Field(default=100, ge=1, le=100)
    connector_max_pages_per_round: int = Field(default=20, ge=1)
    # One account's round never holds a worker longer than this (others wait for no one).
    connector_account_round_seconds: float = Field(default=120.0, gt=0)
    connector_http_timeout_seconds: float = Field(default=20.0, gt=0)
    # Tokens are refreshed when they expire within this margin.
    connector_refresh_margin_seconds: float = Field(default=300.0, ge=0)
    # Back-off after a failed round: base * 2^(failures-1), at most max.
    connector_backoff_base_seconds: float = Field(default=30.0, gt=0)
    connector_backoff_max_seconds: float = Field(default=3600.0, gt=0)
    # Publishing: how often due publications are sent, attempts before failing, back-off base.
    connector_publish_interval_seconds: float = Field(default=5.0, ge=0)
    connector_publish_max_attempts: int = Field(default=5, ge=1)
    connector_publish_backoff_seconds: float = Field(default=10.0, gt=0)

    def meta_secret_for(self, tenant_id: str) -> str | None:
        """The Meta app secret that signs the tenant's webhooks."""
        return self.meta_app_secrets.get(tenant_id, self.meta_app_secret)
