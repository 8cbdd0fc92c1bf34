"""The bench runners ship in the package: an installed ``wijkhub bench`` needs no checkout.

They used to live in ``tests/benchmarks`` and the CLI put that folder on ``sys.path``,
so ``wijkhub bench`` failed from a wheel. These tests keep them in the package, importing
package code only, and the CLI free of path manipulation.
"""

import datetime as dt
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wijkhub import broker, cli
from wijkhub.bench import intake, linking, municipality, pipeline
from wijkhub.connectors.intake import Intake
from wijkhub.schemas.registry import RAW_EVENT
from wijkhub.settings import Settings

from builders import FakeKafka

REPO = Path(__file__).resolve().parents[2]
RUNNERS = ["wijkhub.bench.pipeline", "wijkhub.bench.intake", "wijkhub.bench.linking",
           "wijkhub.bench.municipality", "wijkhub.bench.workers"]  # fmt: skip


def test_the_runners_import_in_an_isolated_interpreter_outside_the_checkout(tmp_path):
    # -I: neither the working directory nor PYTHONPATH on sys.path, so tests/ is not either.
    code = (
        f"import sys, {', '.join(RUNNERS)}; "
        "print(sorted(m for m in sys.modules if m in {'builders', 'shared_data', 'conftest'}))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-c", code], cwd=tmp_path, capture_output=True, text=True
    )
    assert (done.returncode, done.stderr, done.stdout) == (0, "", "[]\n")


def test_the_bench_package_is_listed_for_the_wheel():
    # The packages are listed by hand (streams/ and connectors/ are mapped into wijkhub),
    # so a new sub-package of wijkhub/ that is not listed would be missing from the wheel.
    listed = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    found = sorted(
        "wijkhub." + ".".join(p.parent.relative_to(REPO / "wijkhub").parts)
        for p in (REPO / "wijkhub").rglob("__init__.py")
        if p.parent != REPO / "wijkhub"
    )
    assert "wijkhub.bench" in found
    assert [name for name in found if name not in listed] == []


@pytest.mark.parametrize(
    ("command", "module", "args", "expected_call"),
    [
        ("bench", pipeline, ["--events", "7", "--json"], (7, True, 1, 1000)),
        ("bench", pipeline, ["--events", "7", "--workers", "2", "--json"], (7, True, 2, 1000)),
        ("bench-intake", intake, ["--records", "5"], (5,)),
        ("bench-linking", linking, ["--persons", "11", "--signals", "3"], (11, 3)),
    ],
)
def test_each_bench_command_calls_its_packaged_runner_and_leaves_sys_path_alone(
    monkeypatch, command, module, args, expected_call
):
    calls = []

    def fake_run_bench(settings, *rest, **kwargs):
        calls.append((*rest, *kwargs.values()))
        return {"runner": module.__name__}

    monkeypatch.setattr(module, "run_bench", fake_run_bench)
    path_before = list(sys.path)
    result = CliRunner().invoke(cli.app, [command, *args])
    assert (result.exit_code, json.loads(result.output)) == (0, {"runner": module.__name__})
    assert calls == [expected_call]
    assert sys.path == path_before


def test_bench_municipality_runs_the_first_load_instead(monkeypatch):
    calls = []

    def fake_first_load(settings, residents, workers, say):
        calls.append((residents, workers))
        return {"runner": "first-load"}

    monkeypatch.setattr(municipality, "run_bench", fake_first_load)
    result = CliRunner().invoke(cli.app, ["bench", "--municipality", "500", "--workers", "2",
                                          "--json"])  # fmt: skip
    assert (result.exit_code, json.loads(result.output)) == (0, {"runner": "first-load"})
    assert calls == [(500, 2)]


@pytest.mark.parametrize("command", ["bench", "bench-intake", "bench-linking"])
def test_bench_help_works(command):
    result = CliRunner().invoke(cli.app, [command, "--help"])
    assert result.exit_code == 0, result.output


# --- the runners' offline parts: what they build must still fit the code they measure -----

SETTINGS = Settings(pseudonym_key=b"p" * 32, dead_letter_key=b"d" * 32)


def test_every_intake_bench_input_is_accepted_whole():
    # The runner refuses to report a rate when a record is dead-lettered; find that here.
    got = {}
    for name, (source, inputs) in intake._inputs(3).items():
        kafka = FakeKafka()
        reports = [
            Intake(SETTINGS, source, kafka=kafka).ingest(data, f"{name}-{n}")
            for n, data in enumerate(inputs)
        ]
        got[name] = (sum(r.read for r in reports), sum(r.events for r in reports),
                     [t for t in kafka.topics if not t.startswith("raw.")])  # fmt: skip
    assert got == {name: (3, 3, []) for name in intake._inputs(3)}


def test_the_pipeline_bench_encodes_the_records_it_asks_for():
    encode = pipeline.Encoder(SETTINGS)
    now = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    items = [encode(source, record, now) for source, record in pipeline.source_records(40, 11)]
    assert len(items) == 40
    assert sorted({topic.split(".")[0] for topic, _key, _value in items}) == ["raw"]


def test_live_records_are_stamped_with_when_they_are_due_not_when_they_were_encoded():
    encode = pipeline.Encoder(SETTINGS)
    start = dt.datetime(2026, 11, 1, 12, tzinfo=dt.UTC).timestamp()
    due = pipeline.scheduled(encode, pipeline.source_records(40, 11), 1000, start)
    accepted = [encode.catalog.decode(value, RAW_EVENT)["envelope"]["received_at"]
                for _topic, _key, value in due]  # fmt: skip
    assert [a.timestamp() for a in accepted] == [start + i / 1000 for i in range(40)]


def test_the_linking_bench_links_in_memory(monkeypatch):
    # Its Kafka floor needs a broker; the linking it measures runs in memory. With 1000
    # persons (seed 3) some signals name a building where nobody lives: the empty register.
    monkeypatch.setattr(linking, "_kafka_floor", lambda base, n: {"records": n})
    result = linking.run_bench(SETTINGS, persons=1000, signals=40)
    assert result["signal_linking"]["signals"] == 40
    assert result["kafka_passthrough_same_run"] == {"records": 40}
    # How many link is the matcher's quality (tests/unit/test_linkeval.py), not the bench's.
    assert 0 <= result["signal_linking"]["linked"] <= 40


def test_outside_a_checkout_the_local_broker_is_refused_with_what_to_do(monkeypatch, tmp_path):
    monkeypatch.setattr(broker, "POM", tmp_path / "deploy" / "kafka" / "pom.xml")
    with pytest.raises(broker.BrokerError, match="set KAFKA_BOOTSTRAP_SERVERS"):
        broker.jar_dir()


def test_a_bench_without_a_broker_ends_with_the_reason_and_exit_code_2(monkeypatch):
    def no_broker(*args, **kwargs):
        raise broker.BrokerError("no local broker outside a checkout")

    monkeypatch.setattr(linking, "run_bench", no_broker)
    result = CliRunner().invoke(cli.app, ["bench-linking"])
    assert (result.exit_code, result.output) == (2, "error: no local broker outside a checkout\n")


class _Clock:
    """time.monotonic and time.sleep of a bench that sleeps without waiting."""

    def __init__(self) -> None:
        self.now, self.slept = 0.0, []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_bench_polls_the_lag_rarely_while_much_remains_and_often_near_the_end(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(pipeline.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pipeline.time, "sleep", clock.sleep)
    rate = 1000.0  # records a second drained

    def lag() -> int:
        return max(0, round(60_000 - rate * clock.now))

    pipeline.drained(lag, 600, "the backlog")
    assert 60.0 <= clock.now <= 60.25  # the end seen within a quarter of a second
    assert clock.slept[0] == 0.25  # no drain rate known yet
    assert max(clock.slept) == 2.0  # much left: the longest wait, no longer
    assert clock.slept[-1] == 0.25  # near the end: the shortest
    assert len(clock.slept) < 60 * 4 / 3  # far fewer polls than four a second


def test_a_lag_that_does_not_drain_times_out_with_what_it_waited_for(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr(pipeline.time, "monotonic", clock.monotonic)
    monkeypatch.setattr(pipeline.time, "sleep", clock.sleep)
    with pytest.raises(TimeoutError, match="the live phase"):
        pipeline.drained(lambda: 5, 10, "the live phase")
    assert set(clock.slept) == {0.25}  # growing or standing still: polled as before


def test_the_live_latency_is_read_per_hop_and_added_up_over_the_workers():
    """The household's series is the whole path; person and address the hops before it.
    Summed over every label once, the first hops would pull the path's quantiles down."""
    from prometheus_client import generate_latest

    from wijkhub.metrics import Metrics

    pages = []
    for _worker in range(2):
        metrics = Metrics()
        for stage, seconds in (("person", 0.02), ("address", 0.2), ("household", 0.7)):
            for _ in range(10):
                metrics.processing_latency.labels(stage).observe(seconds)
        pages.append(generate_latest(metrics.registry).decode())
    found = pipeline._live_histograms("\n".join(pages))
    household = found["wijkhub_processing_latency_seconds", "household"]
    assert max(household.values()) == 20  # both workers' facts
    assert found["wijkhub_relinked_fact_age_seconds", "household"] == {}
    medians = [pipeline._quantile(0.5, found["wijkhub_processing_latency_seconds", stage])
               for stage in pipeline.HOPS]  # fmt: skip
    assert medians[0] < 0.05 < medians[1] < 0.5 < medians[2] <= 1.0
