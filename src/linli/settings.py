"""Settings from the environment (LINLI_*); the defaults are the embedded one-machine setup."""

from __future__ import annotations

import base64
import hashlib
from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_DATA_DIR = Path("data")


class Settings(BaseSettings):
    """Everything configurable about one Linli deployment."""

    model_config = SettingsConfigDict(env_prefix="LINLI_", env_file=".env", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{DEFAULT_DATA_DIR / 'linli.db'}")
    host: str = "127.0.0.1"
    port: int = 8000
    # Secrets: the development defaults are fine for the demo and tests, never for production.
    secret_key: str = "linli-dev-secret-change-me"
    pii_key: str = ""  # base64 32 bytes; derived from secret_key when empty
    default_lang: str = "zh"
    timezone: str = "Asia/Shanghai"
    login_max_failures: int = 5
    login_lockout_minutes: int = 15
    session_hours: int = 12
    cookie_secure: bool = False  # set true behind HTTPS: session cookies then travel over TLS only
    max_upload_mb: int = 20
    auto_migrate: bool = True
    bus_url: str = ""  # nats://host:4222 selects NATS JetStream; empty: the in-process bus
    # Device ingest: largest accepted body, allowed clock difference of signed requests, raw body retention.
    ingest_max_bytes: int = 2 * 1024 * 1024
    ingest_clock_skew_seconds: int = 300
    # Processes that authenticate, check and store HTTP ingest requests beside the server's own (0: the
    # server's threads do it). Each is one more CPU core for ingest; the server keeps the bus, the SSE
    # streams, the MQTT ingest and the jobs. Needs a database other processes can open (not :memory:).
    ingest_processes: int = Field(default=0, ge=0, le=64)
    # With ingest processes, the server publishes their committed events on the bus: what they commit
    # within this window goes out in one delivery (one write transaction instead of one per request).
    ingest_gather_ms: int = Field(default=20, ge=0, le=1000)
    raw_retention_days: int = 7
    # Media store (core/media): pictures and clips, content-addressed files; the size limit of one object.
    media_dir: Path = DEFAULT_DATA_DIR / "media"
    media_max_bytes: int = 32 * 1024 * 1024
    # Device broker (mqtt://user:pass@host:1883): `linli serve` then runs the MQTT ingest and sends commands.
    mqtt_url: str = ""
    mqtt_client_id: str = "linli-ingest"  # one consuming process per id: the broker keeps its session
    mqtt_ingest: bool = True  # false: serve only publishes commands; `linli ingest mqtt` workers ingest
    mqtt_max_bytes: int = 256 * 1024  # a larger event message is a dead letter (its first 4 KB kept)
    # MQTT v5 shared subscription: ingest workers with the same group (and each its own client id) split
    # the devices' messages between them instead of each receiving all ($share/{group}/linli/+/+/...).
    mqtt_share_group: str = ""
    # Scheduled jobs (offline checks, command expiry, outbox catch-up, purges): on for `linli serve` unless
    # set false (run them in one process only, or as `linli jobs run`); off for apps built in code (tests).
    jobs_enabled: bool = False
    # The demo district kept alive (demo/live.py): the jobs go on playing the pilot communities' simulated
    # devices through the hub, so devices stay online and events keep coming. `make run` sets it.
    demo_live: bool = False

    def pii_key_bytes(self) -> bytes:
        """The 32-byte AES key for personal data at rest."""
        if self.pii_key:
            key = base64.b64decode(self.pii_key)
            if len(key) != 32:
                raise ValueError("LINLI_PII_KEY must be 32 bytes, base64-encoded")
            return key
        return hashlib.sha256(b"linli-pii:" + self.secret_key.encode()).digest()

    def lookup_key_bytes(self) -> bytes:
        """The HMAC key for keyed look-up hashes of personal data."""
        return hashlib.sha256(b"linli-lookup:" + self.pii_key_bytes()).digest()


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
