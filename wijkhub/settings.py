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
from typing import Any

from wijkhub.streams.topics import DATA_CLASSES, DataClass

ENV_PREFIX = "WIJKHUB_"
KAFKA_COMPRESSIONS = ("zstd", "gzip", "none")  # WIJKHUB_KAFKA_COMPRESSION: every client reads them
# The CLI user's own operator token (``wijkhub household show``). The worker reads the list
# of every operator's token from WIJKHUB_OPERATOR_TOKENS: one letter apart, the two names
# were set for each other, so the CLI's has a name of its own; the old one still works.
CLI_OPERATOR_TOKEN = "WIJKHUB_CLI_OPERATOR_TOKEN"
DEPRECATED_CLI_OPERATOR_TOKEN = "WIJKHUB_OPERATOR_TOKEN"


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


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, got {raw!r}") from None


def _secret(env: Mapping[str, str], name: str) -> str:
    """A secret from ``NAME``, or from the file ``NAME_FILE`` names (a mounted secret, so
    the value is in no environment listing). Both set is a mistake, said at once."""
    path = env.get(f"{name}_FILE")
    if not path:
        return env.get(name, "")
    if env.get(name):
        raise SettingsError(f"set {name} or {name}_FILE, not both")
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SettingsError(f"{name}_FILE {path}: cannot read ({exc.strerror})") from None


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = (env.get(name) or "").strip().lower()
    if raw == "":
        return default
    if raw not in ("1", "0", "true", "false", "yes", "no"):
        raise SettingsError(f"{name} must be true or false, got {raw!r}")
    return raw in ("1", "true", "yes")


def _choice(env: Mapping[str, str], name: str, default: str, allowed: tuple[str, ...]) -> str:
    raw = (env.get(name) or "").strip().lower() or default
    if raw not in allowed:
        raise SettingsError(f"{name} must be one of {', '.join(allowed)}, got {raw!r}")
    return raw


def _retention_days(env: Mapping[str, str]) -> dict[str, int]:
    """Days per data class from WIJKHUB_RETENTION_<CLASS>_DAYS (each class's default when
    unset). 0 (kept while current) only for a compacted class: a delete-policy topic with
    retention 0 would drop records before anyone read them."""
    days = {}
    for data_class in DATA_CLASSES:
        value = _int(env, data_class.env, data_class.default_days)
        least = 0 if data_class.compacted else 1
        if value < least:
            raise SettingsError(f"{data_class.env} must be at least {least} days, got {value}")
        days[data_class.id] = value
    return days


def _not_negative(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 0:
        raise SettingsError(f"{name} must be 0 or more, got {value}")
    return value


def _positive(env: Mapping[str, str], name: str, default: int) -> int:
    value = _int(env, name, default)
    if value < 1:
        raise SettingsError(f"{name} must be at least 1, got {value}")
    return value


def cli_operator_token(
    given: str | None, env: Mapping[str, str] | None = None
) -> tuple[str | None, str | None]:
    """(the CLI user's own operator token, a deprecation warning or None).

    ``given`` is ``--token`` or WIJKHUB_CLI_OPERATOR_TOKEN; without either, the
    old WIJKHUB_OPERATOR_TOKEN is used, with a warning naming the new variable.
    A ``name=token`` list (the worker's format) is refused: it is never one
    person's token, and the message says which variable the worker reads.
    """
    env = os.environ if env is None else env
    token, warning = (given or "").strip(), None
    if not token and (env.get(DEPRECATED_CLI_OPERATOR_TOKEN) or "").strip():
        token = env[DEPRECATED_CLI_OPERATOR_TOKEN].strip()
        warning = (
            f"{DEPRECATED_CLI_OPERATOR_TOKEN} is deprecated: set your own token in "
            f"{CLI_OPERATOR_TOKEN} (the worker's list stays WIJKHUB_OPERATOR_TOKENS)"
        )
    name, equals, rest = token.partition("=")
    if equals and name.strip() and len(rest.rstrip("=")) >= 24:
        raise SettingsError(
            f"{CLI_OPERATOR_TOKEN} holds a name=token list, the worker's format "
            "(WIJKHUB_OPERATOR_TOKENS): give only your own token"
        )
    return token or None, warning


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
    # Named in every person_ref (P<id>-…): raise it with every new pseudonym key.
    pseudonym_key_id: str = "1"
    # The worker's key behind every published household_ref and alert id (streams/ids.py).
    id_key: bytes = field(default=b"", repr=False)
    dead_letter_key: bytes = field(default=b"", repr=False)
    data_dir: Path = Path(".wijkhub")
    web_host: str = "127.0.0.1"
    web_port: int = 6066
    log_level: str = "INFO"
    # RocksDB would give every table partition a 2 GiB block cache; cap it.
    rocksdb_block_cache_bytes: int = 16 * 1024 * 1024
    # Batches read by the stream processors: bigger amortises per-message cost. A stage
    # waits at most ``within`` after a batch's first record for more; each of the three
    # stages adds that wait to a live record's latency. Measured on the 100,000-event
    # bench (issue 19): 0.05 s gave the same throughput as 0.2 s and a live p99 at 1,000
    # events/s under 1 s (2.5 s with 0.2 s).
    batch_size: int = 500
    batch_within_seconds: float = 0.05
    # Standby copies of the other workers' tables. Faust's default is 1; Kafka Streams' is
    # 0, and so is ours: a copy reads every changelog record of the others, which measured
    # cost two workers a third of their throughput and four times their live p99 (issue
    # 19). With 0 a takeover restores the partitions it takes from their changelogs.
    standby_replicas: int = 0
    # Python's cyclic garbage collector runs a young-generation pass every 700 new
    # container objects by default; a stage allocates hundreds of dicts per record, so it
    # ran thousands of passes a second. A worker raises the threshold to this and freezes
    # what it built at start (gc.freeze): its state lives in RocksDB, not in Python
    # objects, so little garbage waits longer. 700 restores Python's default (issue 19).
    gc_young_objects: int = 50_000
    # Compression of the record batches the workers and the intake produce. Most of what a
    # worker writes is its state's changelog (JSON); compressed, the broker and TLS move a
    # fraction of the bytes, and two workers sharing 2 cores with the broker drained the
    # 100,000-event backlog in 29.8 s with zstd, 34.4 s with lz4 and 41.9 s with none
    # (issue 19). Every client decodes zstd (cramjam for aiokafka, zstandard for
    # kafka-python: both dependencies) and gzip; lz4 is not offered: kafka-python's sinks
    # would need one more library to read it.
    kafka_compression: str = "zstd"
    # Alert routing: district → team, specialised teams, fallback (empty: streams/routing.yaml).
    routing_file: str = ""
    ingest_tokens: str = field(default="", repr=False)
    # name=token,… of the operators who may read a household view (GET /households/<ref>)
    operator_tokens: str = field(default="", repr=False)
    # who runs the CLI, on its audit entries (erase, subject-access, alerts list, backtest);
    # empty: the login name of the process
    cli_actor: str = ""
    intake_host: str = "127.0.0.1"
    intake_port: int = 6070
    # HTTP intake: the largest request body (413 beyond), and per token a rate of
    # requests per second with bursts (429 beyond; a rate of 0 turns it off).
    intake_max_body_bytes: int = 16 * 1024 * 1024
    intake_rate_per_second: float = 10.0
    intake_rate_burst: int = 50
    # /metrics of the long-running connectors (file drop, Kafka relay); 0 turns it off.
    connector_metrics_port: int = 6071
    # File drop: a larger file goes to failed/ unread (symbolic links always do).
    filedrop_max_bytes: int = 64 * 1024 * 1024
    # CBS pc6hnr<year>0801_gwb.csv: districts of addresses (empty: no districts).
    district_table: str = ""
    # The detection rules (YAML); empty: the shipped streams/rules.yaml.
    rules_file: str = ""
    # Match probability a signal without BSN needs to be linked to a resident.
    match_threshold: float = 0.99
    # Minimisation: a resident's name and date of birth leave the address stage's state this
    # many days (event time) after they left the building; more than the longest rule
    # window over signals matched by name (180 d). No legal term: set by the municipality.
    match_grace_days: int = 365
    # Facts dated this many days before the newest fact of their household still count
    # (results never depend on arrival order); later ones are counted in
    # wijkhub_late_facts_total so an operator sees a source delivering that late.
    allowed_lateness_days: int = 90
    # An event dated more than this many days after it was received is dead-lettered
    # (future-dated): a consent dated ahead could never be withdrawn.
    future_tolerance_days: int = 1
    # Consumer group liveness: a worker that dies without leaving is replaced after
    # the session timeout (Kafka's default 45 s; faust's 60 s).
    session_timeout_seconds: float = 10.0
    heartbeat_interval_seconds: float = 1.0
    # Kafka static membership (group.instance.id): a worker restarted under the same id
    # within the session timeout takes its partitions back without a rebalance.
    worker_instance_id: str = ""
    # 0 picks a free port, so parallel runs on one machine do not clash.
    kafka_port: int = 0
    # How every Kafka client connects (wijkhub/kafka.py): SASL_SSL (SCRAM-SHA-512) by
    # default, SSL for mutual TLS, PLAINTEXT only when chosen (a warning at start-up).
    # Each service is its own principal: <prefix><service>, with its password (or
    # certificate and key) as a file in the credentials folder. Empty with the local
    # broker: the CLI uses the broker's own CA and credentials.
    kafka_security_protocol: str = "SASL_SSL"
    kafka_credentials_dir: str = ""
    kafka_ca_file: str = ""
    kafka_principal_prefix: str = "wijkhub-"
    # Teams, their inbox accounts (scrypt hashes), e-mail addresses and webhooks (YAML).
    teams_file: str = ""
    # team=secret,… for signing each team's webhook calls (HMAC-SHA256)
    webhook_secrets: str = field(default="", repr=False)
    # Webhooks are https only; plain http to a loopback address (a test receiver) only when
    # this is true.
    webhook_allow_loopback_http: bool = False
    # The team inbox (web): where it listens and the address teams use to reach it (links
    # in e-mails, the OIDC callback).
    inbox_host: str = "127.0.0.1"
    inbox_port: int = 6072
    inbox_base_url: str = "http://127.0.0.1:6072"
    # How staff sign in: "oidc" (the municipality's identity provider) or "local" (the
    # teams file's accounts: development only, refused unless chosen explicitly).
    inbox_auth: str = "oidc"
    # The provider: its issuer URL (discovery at <issuer>/.well-known/openid-configuration),
    # the inbox's client id and secret there. Empty issuer with a local `wijkhub idp`
    # running: the CLI uses that one.
    oidc_issuer: str = ""
    oidc_client_id: str = "wijkhub-inbox"
    oidc_client_secret: str = field(default="", repr=False)
    # Group changes at the provider reach a session when the inbox refreshes its tokens:
    # on the first request after this many seconds since the last check.
    oidc_recheck_seconds: float = 60.0
    # A session ends after this long without a request, and this long after sign-in at most.
    inbox_idle_seconds: float = 1800.0
    inbox_session_max_seconds: float = 9 * 3600.0
    # The local Keycloak (`wijkhub idp`, demo and tests): its port and, when the default
    # Java is older than 21, a Java home to run it with (empty: found on this machine).
    idp_port: int = 8180
    idp_java_home: str = ""
    # DDAS delivery (wijkhub export ddas): the supplier's code (codeGegevensleverancier) and
    # the delivering organisation's name (empty: "Gemeente <municipality code>").
    ddas_supplier_code: str = "wijkhub"
    ddas_organisation: str = ""
    # The inbox's /metrics on a port of its own: the inbox port faces the teams' browsers.
    inbox_metrics_port: int = 6074
    # key-id=secret,… signing team actions (the inbox and the worker only; the first signs,
    # all verify: add a new key first, drop an old one after alert-actions' retention).
    action_keys: str = field(default="", repr=False)
    # How often the household worker ends alerts past their expiry date (wall clock).
    expiry_sweep_seconds: float = 3600.0
    # Alert delivery (webhooks, e-mail): attempts before a dead letter, timeout, backoff.
    delivery_attempts: int = 5
    delivery_timeout_seconds: float = 5.0
    delivery_backoff_seconds: float = 1.0
    delivery_metrics_port: int = 6073
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_starttls: bool = False
    # CA bundle that signed the mail relay's certificate (empty: the system's CAs)
    smtp_ca_file: str = ""
    smtp_user: str = ""
    smtp_password: str = field(default="", repr=False)
    mail_from: str = "wijkhub@gemeente.example"
    # Retention in days per data class, by class id (empty: every class's default). What
    # each class holds, the legal term behind its default or why there is none: DATA_CLASSES
    # in streams/topics.py. Set by WIJKHUB_RETENTION_<CLASS>_DAYS (the file drop's source
    # files: WIJKHUB_FILEDROP_PURGE_DAYS); read through retention().
    retention_days: Mapping[str, int] = field(default_factory=dict)
    # Compacted topics: a superseded value or a tombstone is compacted away within this
    # time (max.compaction.lag.ms), and a tombstone itself is removed this long after
    # compaction (delete.retention.ms): together, the bounded time until a tombstone
    # (an erasure, a closed review entry) removes data. A worker whose state directory is
    # older than the tombstone retention misses tombstones: start it with an empty one.
    compaction_max_lag_seconds: int = 86_400
    tombstone_retention_seconds: int = 86_400

    def retention(self, data_class: DataClass) -> int:
        """Days ``data_class`` is kept (0: while current, compacted classes only)."""
        return self.retention_days.get(data_class.id, data_class.default_days)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        p = ENV_PREFIX
        defaults = cls()
        return cls(
            bootstrap_servers=env.get("KAFKA_BOOTSTRAP_SERVERS") or None,
            app_id=env.get(f"{p}APP_ID", defaults.app_id),
            topic_prefix=env.get(f"{p}TOPIC_PREFIX", defaults.topic_prefix),
            topic_partitions=_int(env, f"{p}TOPIC_PARTITIONS", defaults.topic_partitions),
            replication_factor=_int(env, f"{p}REPLICATION_FACTOR", defaults.replication_factor),
            municipality=env.get(f"{p}MUNICIPALITY", defaults.municipality),
            pseudonym_key=_secret(env, f"{p}PSEUDONYM_KEY").encode(),
            id_key=_secret(env, f"{p}ID_KEY").encode(),
            pseudonym_key_id=env.get(f"{p}PSEUDONYM_KEY_ID", defaults.pseudonym_key_id),
            dead_letter_key=_secret(env, f"{p}DEAD_LETTER_KEY").encode(),
            data_dir=Path(env.get(f"{p}DATA_DIR", str(defaults.data_dir))),
            web_host=env.get(f"{p}WEB_HOST", defaults.web_host),
            web_port=_int(env, f"{p}WEB_PORT", defaults.web_port),
            log_level=env.get(f"{p}LOG_LEVEL", defaults.log_level).upper(),
            rocksdb_block_cache_bytes=_int(
                env, f"{p}ROCKSDB_BLOCK_CACHE_BYTES", defaults.rocksdb_block_cache_bytes
            ),
            batch_size=_int(env, f"{p}BATCH_SIZE", defaults.batch_size),
            batch_within_seconds=_float(
                env, f"{p}BATCH_WITHIN_SECONDS", defaults.batch_within_seconds
            ),
            standby_replicas=_not_negative(env, f"{p}STANDBY_REPLICAS", defaults.standby_replicas),
            gc_young_objects=_positive(env, f"{p}GC_YOUNG_OBJECTS", defaults.gc_young_objects),
            kafka_compression=_choice(
                env, f"{p}KAFKA_COMPRESSION", defaults.kafka_compression, KAFKA_COMPRESSIONS
            ),
            routing_file=env.get(f"{p}ROUTING_FILE", ""),
            ingest_tokens=_secret(env, f"{p}INGEST_TOKENS"),
            operator_tokens=_secret(env, f"{p}OPERATOR_TOKENS"),
            cli_actor=env.get(f"{p}CLI_ACTOR", ""),
            intake_host=env.get(f"{p}INTAKE_HOST", defaults.intake_host),
            intake_port=_int(env, f"{p}INTAKE_PORT", defaults.intake_port),
            intake_max_body_bytes=_int(
                env, f"{p}INTAKE_MAX_BODY_BYTES", defaults.intake_max_body_bytes
            ),
            intake_rate_per_second=_float(
                env, f"{p}INTAKE_RATE_PER_SECOND", defaults.intake_rate_per_second
            ),
            intake_rate_burst=_int(env, f"{p}INTAKE_RATE_BURST", defaults.intake_rate_burst),
            connector_metrics_port=_int(
                env, f"{p}CONNECTOR_METRICS_PORT", defaults.connector_metrics_port
            ),
            filedrop_max_bytes=_int(env, f"{p}FILEDROP_MAX_BYTES", defaults.filedrop_max_bytes),
            kafka_port=_int(env, f"{p}KAFKA_PORT", defaults.kafka_port),
            kafka_security_protocol=env.get(
                f"{p}KAFKA_SECURITY_PROTOCOL", defaults.kafka_security_protocol
            ),
            kafka_credentials_dir=env.get(f"{p}KAFKA_CREDENTIALS_DIR", ""),
            kafka_ca_file=env.get(f"{p}KAFKA_CA_FILE", ""),
            kafka_principal_prefix=env.get(
                f"{p}KAFKA_PRINCIPAL_PREFIX", defaults.kafka_principal_prefix
            ),
            district_table=env.get(f"{p}DISTRICT_TABLE", ""),
            rules_file=env.get(f"{p}RULES_FILE", ""),
            match_threshold=_float(env, f"{p}MATCH_THRESHOLD", defaults.match_threshold),
            match_grace_days=_positive(env, f"{p}MATCH_GRACE_DAYS", defaults.match_grace_days),
            allowed_lateness_days=_int(
                env, f"{p}ALLOWED_LATENESS_DAYS", defaults.allowed_lateness_days
            ),
            future_tolerance_days=_int(
                env, f"{p}FUTURE_TOLERANCE_DAYS", defaults.future_tolerance_days
            ),
            session_timeout_seconds=_float(
                env, f"{p}SESSION_TIMEOUT_SECONDS", defaults.session_timeout_seconds
            ),
            heartbeat_interval_seconds=_float(
                env, f"{p}HEARTBEAT_INTERVAL_SECONDS", defaults.heartbeat_interval_seconds
            ),
            worker_instance_id=env.get(f"{p}WORKER_INSTANCE_ID", ""),
            teams_file=env.get(f"{p}TEAMS_FILE", ""),
            webhook_secrets=_secret(env, f"{p}WEBHOOK_SECRETS"),
            webhook_allow_loopback_http=_bool(
                env, f"{p}WEBHOOK_ALLOW_LOOPBACK_HTTP", defaults.webhook_allow_loopback_http
            ),
            inbox_host=env.get(f"{p}INBOX_HOST", defaults.inbox_host),
            inbox_port=_int(env, f"{p}INBOX_PORT", defaults.inbox_port),
            inbox_base_url=env.get(f"{p}INBOX_BASE_URL", defaults.inbox_base_url),
            inbox_auth=_choice(env, f"{p}INBOX_AUTH", defaults.inbox_auth, ("oidc", "local")),
            oidc_issuer=env.get(f"{p}OIDC_ISSUER", "").rstrip("/"),
            oidc_client_id=env.get(f"{p}OIDC_CLIENT_ID", defaults.oidc_client_id),
            oidc_client_secret=_secret(env, f"{p}OIDC_CLIENT_SECRET"),
            oidc_recheck_seconds=_float(
                env, f"{p}OIDC_RECHECK_SECONDS", defaults.oidc_recheck_seconds
            ),
            inbox_idle_seconds=_float(env, f"{p}INBOX_IDLE_SECONDS", defaults.inbox_idle_seconds),
            inbox_session_max_seconds=_float(
                env, f"{p}INBOX_SESSION_MAX_SECONDS", defaults.inbox_session_max_seconds
            ),
            idp_port=_int(env, f"{p}IDP_PORT", defaults.idp_port),
            idp_java_home=env.get(f"{p}IDP_JAVA_HOME", ""),
            ddas_supplier_code=env.get(f"{p}DDAS_SUPPLIER_CODE", defaults.ddas_supplier_code),
            ddas_organisation=env.get(f"{p}DDAS_ORGANISATION", defaults.ddas_organisation),
            inbox_metrics_port=_int(env, f"{p}INBOX_METRICS_PORT", defaults.inbox_metrics_port),
            action_keys=_secret(env, f"{p}ACTION_KEYS"),
            expiry_sweep_seconds=_float(
                env, f"{p}EXPIRY_SWEEP_SECONDS", defaults.expiry_sweep_seconds
            ),
            delivery_attempts=_int(env, f"{p}DELIVERY_ATTEMPTS", defaults.delivery_attempts),
            delivery_timeout_seconds=_float(
                env, f"{p}DELIVERY_TIMEOUT_SECONDS", defaults.delivery_timeout_seconds
            ),
            delivery_backoff_seconds=_float(
                env, f"{p}DELIVERY_BACKOFF_SECONDS", defaults.delivery_backoff_seconds
            ),
            delivery_metrics_port=_int(
                env, f"{p}DELIVERY_METRICS_PORT", defaults.delivery_metrics_port
            ),
            smtp_host=env.get(f"{p}SMTP_HOST", ""),
            smtp_port=_int(env, f"{p}SMTP_PORT", defaults.smtp_port),
            smtp_starttls=_bool(env, f"{p}SMTP_STARTTLS", defaults.smtp_starttls),
            smtp_ca_file=env.get(f"{p}SMTP_CA_FILE", ""),
            smtp_user=env.get(f"{p}SMTP_USER", ""),
            smtp_password=_secret(env, f"{p}SMTP_PASSWORD"),
            mail_from=env.get(f"{p}MAIL_FROM", defaults.mail_from),
            retention_days=_retention_days(env),
            compaction_max_lag_seconds=_positive(
                env, f"{p}COMPACTION_MAX_LAG_SECONDS", defaults.compaction_max_lag_seconds
            ),
            tombstone_retention_seconds=_positive(
                env, f"{p}TOMBSTONE_RETENTION_SECONDS", defaults.tombstone_retention_seconds
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
            f"{p}ID_KEY": self.id_key.decode(),
            f"{p}PSEUDONYM_KEY_ID": self.pseudonym_key_id,
            f"{p}DEAD_LETTER_KEY": self.dead_letter_key.decode(),
            f"{p}DATA_DIR": str(self.data_dir),
            f"{p}WEB_HOST": self.web_host,
            f"{p}WEB_PORT": str(self.web_port),
            f"{p}LOG_LEVEL": self.log_level,
            f"{p}ROCKSDB_BLOCK_CACHE_BYTES": str(self.rocksdb_block_cache_bytes),
            f"{p}BATCH_SIZE": str(self.batch_size),
            f"{p}BATCH_WITHIN_SECONDS": str(self.batch_within_seconds),
            f"{p}STANDBY_REPLICAS": str(self.standby_replicas),
            f"{p}GC_YOUNG_OBJECTS": str(self.gc_young_objects),
            f"{p}KAFKA_COMPRESSION": self.kafka_compression,
            f"{p}ROUTING_FILE": self.routing_file,
            f"{p}KAFKA_PORT": str(self.kafka_port),
            f"{p}KAFKA_SECURITY_PROTOCOL": self.kafka_security_protocol,
            f"{p}KAFKA_CREDENTIALS_DIR": self.kafka_credentials_dir,
            f"{p}KAFKA_CA_FILE": self.kafka_ca_file,
            f"{p}KAFKA_PRINCIPAL_PREFIX": self.kafka_principal_prefix,
            f"{p}MATCH_THRESHOLD": str(self.match_threshold),
            f"{p}MATCH_GRACE_DAYS": str(self.match_grace_days),
            f"{p}ALLOWED_LATENESS_DAYS": str(self.allowed_lateness_days),
            f"{p}FUTURE_TOLERANCE_DAYS": str(self.future_tolerance_days),
            f"{p}SESSION_TIMEOUT_SECONDS": str(self.session_timeout_seconds),
            f"{p}HEARTBEAT_INTERVAL_SECONDS": str(self.heartbeat_interval_seconds),
            f"{p}WORKER_INSTANCE_ID": self.worker_instance_id,
            f"{p}DISTRICT_TABLE": self.district_table,
            f"{p}RULES_FILE": self.rules_file,
            f"{p}INGEST_TOKENS": self.ingest_tokens,
            f"{p}OPERATOR_TOKENS": self.operator_tokens,
            f"{p}CLI_ACTOR": self.cli_actor,
            f"{p}INTAKE_HOST": self.intake_host,
            f"{p}INTAKE_PORT": str(self.intake_port),
            f"{p}INTAKE_MAX_BODY_BYTES": str(self.intake_max_body_bytes),
            f"{p}INTAKE_RATE_PER_SECOND": str(self.intake_rate_per_second),
            f"{p}INTAKE_RATE_BURST": str(self.intake_rate_burst),
            f"{p}CONNECTOR_METRICS_PORT": str(self.connector_metrics_port),
            f"{p}FILEDROP_MAX_BYTES": str(self.filedrop_max_bytes),
            f"{p}TEAMS_FILE": self.teams_file,
            f"{p}WEBHOOK_SECRETS": self.webhook_secrets,
            f"{p}WEBHOOK_ALLOW_LOOPBACK_HTTP": str(self.webhook_allow_loopback_http).lower(),
            f"{p}INBOX_HOST": self.inbox_host,
            f"{p}INBOX_PORT": str(self.inbox_port),
            f"{p}INBOX_BASE_URL": self.inbox_base_url,
            f"{p}INBOX_AUTH": self.inbox_auth,
            f"{p}OIDC_ISSUER": self.oidc_issuer,
            f"{p}OIDC_CLIENT_ID": self.oidc_client_id,
            f"{p}OIDC_CLIENT_SECRET": self.oidc_client_secret,
            f"{p}OIDC_RECHECK_SECONDS": str(self.oidc_recheck_seconds),
            f"{p}INBOX_IDLE_SECONDS": str(self.inbox_idle_seconds),
            f"{p}INBOX_SESSION_MAX_SECONDS": str(self.inbox_session_max_seconds),
            f"{p}IDP_PORT": str(self.idp_port),
            f"{p}IDP_JAVA_HOME": self.idp_java_home,
            f"{p}DDAS_SUPPLIER_CODE": self.ddas_supplier_code,
            f"{p}DDAS_ORGANISATION": self.ddas_organisation,
            f"{p}INBOX_METRICS_PORT": str(self.inbox_metrics_port),
            f"{p}ACTION_KEYS": self.action_keys,
            f"{p}EXPIRY_SWEEP_SECONDS": str(self.expiry_sweep_seconds),
            f"{p}DELIVERY_ATTEMPTS": str(self.delivery_attempts),
            f"{p}DELIVERY_TIMEOUT_SECONDS": str(self.delivery_timeout_seconds),
            f"{p}DELIVERY_BACKOFF_SECONDS": str(self.delivery_backoff_seconds),
            f"{p}DELIVERY_METRICS_PORT": str(self.delivery_metrics_port),
            f"{p}SMTP_HOST": self.smtp_host,
            f"{p}SMTP_PORT": str(self.smtp_port),
            f"{p}SMTP_STARTTLS": str(self.smtp_starttls).lower(),
            f"{p}SMTP_CA_FILE": self.smtp_ca_file,
            f"{p}SMTP_USER": self.smtp_user,
            f"{p}SMTP_PASSWORD": self.smtp_password,
            f"{p}MAIL_FROM": self.mail_from,
            **{c.env: str(self.retention(c)) for c in DATA_CLASSES},
            f"{p}COMPACTION_MAX_LAG_SECONDS": str(self.compaction_max_lag_seconds),
            f"{p}TOMBSTONE_RETENTION_SECONDS": str(self.tombstone_retention_seconds),
        }
        if self.bootstrap_servers:
            env["KAFKA_BOOTSTRAP_SERVERS"] = self.bootstrap_servers
        return env

    def with_(self, **changes: Any) -> Settings:
        """A copy with some fields changed (any field: dataclasses.replace checks the names)."""
        return replace(self, **changes)

    @property
    def kafka_compression_type(self) -> str | None:
        """``kafka_compression`` as the Kafka clients take it (no compression: None)."""
        return None if self.kafka_compression == "none" else self.kafka_compression

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

    def require_dead_letter_key(self) -> None:
        """The worker and delivery seal their dead letters; they need no pseudonym key."""
        if len(self.dead_letter_key) < 32:
            raise SettingsError(
                "WIJKHUB_DEAD_LETTER_KEY must be set to a secret of at least 32 characters"
            )

    def require_secrets(self) -> None:
        """Fail fast, before any event is read, when a secret is missing or weak."""
        for name, value in (
            ("WIJKHUB_PSEUDONYM_KEY", self.pseudonym_key),
            ("WIJKHUB_DEAD_LETTER_KEY", self.dead_letter_key),
        ):
            if len(value) < 32:
                raise SettingsError(f"{name} must be set to a secret of at least 32 characters")
