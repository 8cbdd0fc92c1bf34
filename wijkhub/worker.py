"""Run the Faust worker of the hub in this process."""

from __future__ import annotations

import faust

from wijkhub import logs
from wijkhub.settings import Settings
from wijkhub.streams.app import build_app


def run(settings: Settings) -> None:
    """Block until the worker is stopped (SIGTERM/SIGINT run Faust's clean shutdown)."""
    settings.require_bootstrap()
    logs.configure(settings.log_level)
    app = build_app(settings)
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        logging_config=logs.logging_config(settings.log_level),
        redirect_stdouts=False,
        quiet=True,  # no banner: stdout carries JSON log lines only
    )
    worker.execute_from_commandline()
