"""The one settings object: everything configurable comes from the environment.

12-factor: the same code runs the demo, the tests and a municipality's
cluster; only the environment differs. Nothing here is read at import time;
call :func:`Settings.from_env` where a process starts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

ENV_PREFIX = "WIJKHUB_"


class SettingsError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True)
class Settings:
    """Runtime configuration of a wijkhub process.

    ``pseudonym_key`` is the secret behind every ``person_ref``: the same BSN
    gives the same pseudonym only under the same key, so the key must be the
    same for every connector of one municipality and must never be logged.
    """

    bootstrap_servers: str | None = None
    app_id: str = "wijkhub"
    topic_prefix: str = ""
    topic_partitions: int = 4
    replication_factor: int = 1
    municipality: str = "0363"
    pseudonym_key: bytes = field(default=b"", repr=False)
    dead_letter_key: bytes = field(default=b"", repr=False)
    data_dir: Path = Path(".wijkhub")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "INFO"
    # RocksDB would give every table partition a 2 GiB block cache; cap it.
    rocksdb_block_cache_bytes: int = 16 * 1024 * 1024
    # Batches read by the stream processors: bigger amortises per-message cost.
    batch_size: int = 500
    batch_within_seconds: float = 0.2
    # Alert routing: district → team, specialised teams, fallback (empty: streams/routing.yaml).
    routing_file: str = ""
    ingest_tokens: str = field(default="", repr=False)
    # name=token,… of the operators who may read a household view (GET /households/<ref>)
    operator_tokens: str = field(default="", repr=False)
    intake_host: str = "127.0.0.1"
    intake_port: int = 6070
    # /metrics of the long-running connectors (file drop, Kafka relay); 0 turns it off.
    connector_metrics_port: int = 6071
    # CBS pc6hnr<year>0801_gwb.csv: districts of addresses (empty: no districts).
    district_table: str = ""
    # The detection rules (YAML); empty: the shipped streams/rules.yaml.
    rules_file: str = ""
    # Match probability a signal without BSN needs to be linked to a resident.
    match_threshold: float = 0.99
    # 0 picks a free port, so parallel runs on one machine do not clash.
    kafka_port: int = 0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        p = ENV_PREFIX
        defaults = cls()
        batch_within = env.get(f"{p}BATCH_WITHIN_SECONDS")
        match_threshold = env.get(f"{p}MATCH_THRESHOLD")
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            app_id=env.get(f"{p}APP_ID", defaults.app_id),
            topic_prefix=env.get(f"{p}TOPIC_PREFIX", defaults.topic_prefix),
            topic_partitions=_int(env, f"{p}TOPIC_PARTITIONS", defaults.topic_partitions),
            replication_factor=_int(env, f"{p}REPLICATION_FACTOR", defaults.replication_factor),
            municipality=env.get(f"{p}MUNICIPALITY", defaults.municipality),
            pseudonym_key=env.get(f"{p}PSEUDONYM_KEY", "").encode(),
            dead_letter_key=env.get(f"{p}DEAD_LETTER_KEY", "").encode(),
            data_dir=Path(env.get(f"{p}DATA_DIR", str(defaults.data_dir))),
            web_host=env.get(f"{p}WEB_HOST", defaults.web_host),
            web_port=_int(env, f"{p}WEB_PORT", defaults.web_port),
            log_level=env.get(f"{p}LOG_LEVEL", defaults.log_level).upper(),
            rocksdb_block_cache_bytes=_int(
                env, f"{p}ROCKSDB_BLOCK_CACHE_BYTES", defaults.rocksdb_block_cache_bytes
            ),
            batch_size=_int(env, f"{p}BATCH_SIZE", defaults.batch_size),
            batch_within_seconds=(
                float(batch_within) if batch_within else defaults.batch_within_seconds
            ),
            routing_file=env.get(f"{p}ROUTING_FILE", ""),
            ingest_tokens=env.get(f"{p}INGEST_TOKENS", ""),
            operator_tokens=env.get(f"{p}OPERATOR_TOKENS", ""),
            intake_host=env.get(f"{p}INTAKE_HOST", defaults.intake_host),
            intake_port=_int(env, f"{p}INTAKE_PORT", defaults.intake_port),
            connector_metrics_port=_int(
                env, f"{p}CONNECTOR_METRICS_PORT", defaults.connector_metrics_port
            ),
            kafka_port=_int(env, f"{p}KAFKA_PORT", defaults.kafka_port),
            district_table=env.get(f"{p}DISTRICT_TABLE", ""),
            rules_file=env.get(f"{p}RULES_FILE", ""),
            match_threshold=(
                float(match_threshold) if match_threshold else defaults.match_threshold
            ),
        )

    def to_env(self) -> dict[str, str]:
        """The environment that makes :meth:`from_env` give these settings (for subprocesses)."""
        p = ENV_PREFIX
        env = {
            f"{p}APP_ID": self.app_id,
            f"{p}TOPIC_PREFIX": self.topic_prefix,
            f"{p}TOPIC_PARTITIONS": str(self.topic_partitions),
            f"{p}REPLICATION_FACTOR": str(self.replication_factor),
            f"{p}MUNICIPALITY": self.municipality,
            f"{p}PSEUDONYM_KEY": self.pseudonym_key.decode(),
            f"{p}DEAD_LETTER_KEY": self.dead_letter_key.decode(),
            f"{p}DATA_DIR": str(self.data_dir),
            f"{p}WEB_HOST": self.web_host,
            f"{p}WEB_PORT": str(self.web_port),
            f"{p}LOG_LEVEL": self.log_level,
            f"{p}ROCKSDB_BLOCK_CACHE_BYTES": str(self.rocksdb_block_cache_bytes),
            f"{p}BATCH_SIZE": str(self.batch_size),
            f"{p}BATCH_WITHIN_SECONDS": str(self.batch_within_seconds),
            f"{p}ROUTING_FILE": self.routing_file,
            f"{p}KAFKA_PORT": str(self.kafka_port),
            f"{p}MATCH_THRESHOLD": str(self.match_threshold),
            f"{p}DISTRICT_TABLE": self.district_table,
            f"{p}RULES_FILE": self.rules_file,
            f"{p}INGEST_TOKENS": self.ingest_tokens,
            f"{p}OPERATOR_TOKENS": self.operator_tokens,
            f"{p}INTAKE_HOST": self.intake_host,
            f"{p}INTAKE_PORT": str(self.intake_port),
            f"{p}CONNECTOR_METRICS_PORT": str(self.connector_metrics_port),
        }
        if self.bootstrap_servers:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        return env

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @property
    def broker_url(self) -> str:
        """The bootstrap servers in Faust's ``kafka://`` form."""
        return ";".join(f"kafka://{s.strip()}" for s in self.require_bootstrap().split(","))

    def require_bootstrap(self) -> str:
        if not self.bootstrap_servers:
            raise SettingsError(
                "KAFKA_BOOTSTRAP_SERVERS is not set: start the local broker with "
                "`wijkhub broker start` or point it at a cluster"
            )
        return self.bootstrap_servers

    def require_secrets(self) -> None:
        """Fail fast, before any event is read, when a secret is missing or weak."""
        for name, value in (
            ("WIJKHUB_PSEUDONYM_KEY", self.pseudonym_key),
            ("WIJKHUB_DEAD_LETTER_KEY", self.dead_letter_key),
        ):
            if len(value) < 32:
                raise SettingsError(f"{name} must be set to a secret of at least 32 characters")
