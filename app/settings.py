"""The one typed settings object. Nothing else in Gridline reads the environment."""

from __future__ import annotations

import zoneinfo
from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GRIDLINE_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
    )

    database_url: str = "sqlite:///./gridline.db"
    sms_provider: Literal["console", "twilio"] = "console"
    twilio_account_sid: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_ACCOUNT_SID", "twilio_account_sid")
    )
    twilio_auth_token: str | None = Field(
        default=None, validation_alias=AliasChoices("TWILIO_AUTH_TOKEN", "twilio_auth_token")
    )
    twilio_api_base: str = "https://api.twilio.com"
    twilio_timeout_seconds: float = 10.0
    hotline_number: str | None = None
    public_url: str | None = None
    # None means "true when the provider is twilio"; resolved in the validator below.
    validate_signatures: bool | None = None
    policy_file: Path | None = None
    default_region: str = "CN"
    timezone: str = "Asia/Shanghai"
    locale: Literal["zh", "en"] = "zh"

    # Operational knobs (not in the contract's table, safe defaults).
    max_request_bytes: int = 64 * 1024
    # GRIDLINE_WORKER_POLL_SECONDS: an idle worker looks for work this often, and a
    # busy one fires due deadline steps and office webhooks this often (not at every wake).
    worker_poll_seconds: float = 1.0
    # GRIDLINE_WORKER_PROCESS: `gridline serve` runs its worker in a child
    # process (own interpreter, so routing a backlog does not hold up webhooks:
    # app/worker/process.py), at this extra niceness on PostgreSQL; false: a thread.
    worker_process: bool = True
    worker_nice: int = Field(default=10, ge=0, le=19)
    outbox_batch_size: int = 200  # SMS a worker pass sends at most (its time is bounded too)
    outbox_max_attempts: int = 8
    outbox_backoff_base_seconds: float = 5.0
    outbox_backoff_cap_seconds: float = 3600.0
    outbox_lease_seconds: float = 120.0
    # Deadline steps (app/deadlines/scheduler.py): leased in batches, fired up to
    # step_fire_batch to a transaction; a killed worker's lease is taken over after this long.
    step_batch_size: int = Field(default=100, ge=1)
    step_fire_batch: int = Field(default=20, ge=1)
    step_lease_seconds: float = 60.0
    # Local hour at which each office gets its daily digest of overdue cases.
    digest_hour: int = Field(default=8, ge=0, le=23)
    # Office API webhooks (app/delivery/office_webhooks.py). Private, loopback and link-local
    # targets are refused unless allowed here (tests and closed networks).
    webhook_allow_private: bool = False
    # GRIDLINE_WEBHOOK_TIMEOUT_SECONDS: the most one delivery attempt takes in
    # all (connect, send, the whole answer); then it is retried later.
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)
    webhook_max_attempts: int = 8
    webhook_backoff_base_seconds: float = 10.0
    # Office API limits: requests per key per minute, SMS per office per local day.
    api_rate_limit_per_minute: int = Field(default=600, ge=1)
    api_sms_daily_quota: int = Field(default=500, ge=0)
    # Reliability (issue #6). bench/ and tests/load use these: keep the names stable.
    # Outbox priority bands are in routing/delivery.py (PRIORITY_URGENT > _NORMAL > _BULK).
    # GRIDLINE_SENDER_RATE_PER_S: SMS per second from one sending number (the
    # hotline), shared by every worker through a token bucket in the database;
    # up to one second's worth may leave back to back. 0 = unlimited.
    sender_rate_per_s: float = Field(default=0.0, ge=0)
    # GRIDLINE_OUTBOX_PASS_SECONDS: the longest one send loop runs. The worker's
    # sender thread then starts another (leasing the most urgent first); a
    # `run_once` that sends itself returns to inbound processing (and yields
    # at once when the webhook wakes it), so a new urgent forward never waits
    # behind a whole bulk backlog.
    outbox_pass_seconds: float = Field(default=1.0, gt=0)
    # GRIDLINE_OUTBOX_SEND_BATCH: due SMS leased in one transaction, and their
    # outcomes recorded in one more. GRIDLINE_OUTBOX_CONCURRENCY: how many of a
    # batch's SMS may be in flight to the gateway at once (twilio only; the
    # console sends in order). See app/delivery/outbox.py.
    outbox_send_batch: int = Field(default=32, ge=1)
    outbox_concurrency: int = Field(default=16, ge=1)
    # GRIDLINE_INBOUND_PASS_SECONDS: processing stored messages hands over to
    # the deadline steps (and in `run_once` to sending) after this long, so
    # they go on while a backlog of inbound messages is worked through.
    inbound_pass_seconds: float = Field(default=1.0, gt=0)
    # GRIDLINE_SPOOL_DIR: where the webhook appends signed messages it could not
    # store while the database was unreachable (JSON lines, fsync'd before the
    # 200); the worker replays them. Default: `<sqlite file>.spool/` next to a
    # SQLite database, else ./spool. See app/intake/spool.py.
    spool_dir: Path | None = None
    # GRIDLINE_DATABASE_CONNECT_TIMEOUT_SECONDS: how long a PostgreSQL connect may
    # take before the webhook spools instead (the gateway gives up after 15 s).
    database_connect_timeout_seconds: int = Field(default=5, ge=1)
    # GRIDLINE_SQLITE_LOCK_TIMEOUT_SECONDS: how long a writer waits for SQLite's
    # one write lock; then the webhook spools, and the API and console answer 503.
    sqlite_lock_timeout_seconds: float = Field(default=10.0, gt=0)
    # GRIDLINE_INBOUND_FLOOD_PER_MINUTE: more messages than this from one number
    # within a minute are stored but not acted on one by one; the sender gets one
    # "slow down" SMS. Team members are never throttled. 0 = off. See
    # app/inbound/guards.py.
    inbound_flood_per_minute: int = Field(default=10, ge=0)
    # GRIDLINE_AUTO_REPLY_CAP_PER_HOUR: automatic replies (acks, help, errors) to
    # one number per rolling hour; stops ping-pong with auto-responders. 0 = off.
    auto_reply_cap_per_hour: int = Field(default=20, ge=0)
    # GRIDLINE_AUTO_REPLY_REPEAT_SECONDS: the same text from the same number again
    # within this window gets no automatic reply and is not echoed again. 0 = off.
    auto_reply_repeat_seconds: float = Field(default=600.0, ge=0)
    log_level: str = "INFO"

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.validate_signatures is None:
            self.validate_signatures = self.sms_provider == "twilio"
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"GRIDLINE_TIMEZONE: unknown time zone {self.timezone!r}") from exc
        if self.sms_provider == "twilio":
            missing = [
                name
                for name, value in (
                    ("TWILIO_ACCOUNT_SID", self.twilio_account_sid),
                    ("TWILIO_AUTH_TOKEN", self.twilio_auth_token),
                    ("GRIDLINE_HOTLINE_NUMBER", self.hotline_number),
                )
                if not value
            ]
            if missing:
                raise ValueError(f"the twilio provider needs {', '.join(missing)}")
        if self.validate_signatures:
            if not self.twilio_auth_token:
                raise ValueError("signature validation needs TWILIO_AUTH_TOKEN")
            if not self.public_url:
                # Behind a proxy the URL the gateway signed is not the one we see; refuse
                # to guess rather than reject every genuine webhook.
                raise ValueError("signature validation needs GRIDLINE_PUBLIC_URL")
        if self.outbox_lease_seconds < 2 * self.twilio_timeout_seconds + 10:
            # A lease shorter than a slow send lets a second worker send the same SMS.
            raise ValueError(
                "outbox_lease_seconds must exceed twice twilio_timeout_seconds plus 10 s"
            )
        if self.public_url:
            self.public_url = self.public_url.rstrip("/")
        return self

    @cached_property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @cached_property
    def spool_path(self) -> Path:
        """The spool folder: GRIDLINE_SPOOL_DIR, else beside the SQLite file, else ./spool."""
        if self.spool_dir is not None:
            return self.spool_dir
        prefix = "sqlite:///"
        if self.database_url.startswith(prefix):
            db_file = self.database_url[len(prefix) :].split("?")[0]
            if db_file and db_file != ":memory:":
                path = Path(db_file)
                return path.with_name(path.name + ".spool")
        return Path("spool")
