"""First load: ``wijkhub bench --municipality N``.

A city's first day on the hub is the load of its population register and its history:
from empty topics, a synthetic municipality of about N residents (its BRP registrations,
arrears signals, cases and benefits, with the patterns :func:`wijkhub.synthetic.generate`
plants) goes through the intake, as files of each source, into running workers. The
result is the seconds from the first file taken to the moment the workers have committed
every record of every topic they read: the time before an operator can tell the teams the
inbox is complete. Whether the alerts raised are the planted ones is reported beside it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from wijkhub.admin import prepare
from wijkhub.bench.pipeline import drained, fresh, metric_sum
from wijkhub.bench.workers import Workers
from wijkhub.broker import cluster
from wijkhub.connectors.intake import Intake
from wijkhub.settings import Settings
from wijkhub.streams.topics import HOUSEHOLD_VIEW, full_name
from wijkhub.synthetic import SOURCE_ORDER, generate

RESIDENTS_PER_HOUSEHOLD = 2.5  # generate() draws 1 to 4
PRODUCED = "wijkhub_events_produced_total"
CHUNK = 5000  # records per file: an export is delivered in files, each acknowledged whole


def run_bench(base: Settings, residents: int, workers: int, say: Callable[[str], None]) -> dict:
    with cluster(base, base.data_dir.resolve() / "bench-broker") as settings:
        return _run(fresh(settings, "first-load"), residents, workers, say)


def _run(settings: Settings, residents: int, workers: int, say: Callable[[str], None]) -> dict:
    say(f"generating a municipality of about {residents} residents…")
    town = generate(round(residents / RESIDENTS_PER_HOUSEHOLD), seed=19, with_bad_input=False)
    planted = sum(town.expected.values())
    prepare(settings)
    pool = Workers(settings, workers).start()
    try:
        say(f"loading {town.event_count} records into {workers} worker(s)…")
        began, events = time.perf_counter(), 0
        for source in SOURCE_ORDER:
            lines = town.lines(source)
            intake = Intake(settings, source)
            try:
                for n in range(0, len(lines), CHUNK):
                    data = b"\n".join(lines[n : n + CHUNK])
                    events += intake.ingest(data, f"{source}-{n}.jsonl").events
            finally:
                intake.close()
        loaded = time.perf_counter() - began

        # Every record was acknowledged by Kafka before this point, and every stage's output
        # goes to a topic the same group reads (alerts and views are acknowledged before
        # the commit): no lag left is the whole first load processed. Whether every planted
        # alert came is then a result to report, not a condition to wait for.
        drained(pool.lag, 3600, "every record of every topic processed")
        seconds = time.perf_counter() - began
        text = pool.metrics_text()
        raised = int(metric_sum(text, "wijkhub_alerts_raised_total"))
    finally:
        pool.stop()
    views = full_name(HOUSEHOLD_VIEW, settings.topic_prefix)
    return {
        "residents": len(town.records["population"]),
        "households": round(residents / RESIDENTS_PER_HOUSEHOLD),
        "records": town.event_count,
        "events": events,
        "workers": workers,
        "seconds": round(seconds, 1),
        "intake_seconds": round(loaded, 1),
        "events_per_second": round(events / seconds),
        "alerts_planted": planted,
        "alerts_raised": raised,
        "alerts_as_planted": raised == planted,
        "household_views_published": int(
            metric_sum(text, PRODUCED, stage="household", topic=views)
        ),
    }
