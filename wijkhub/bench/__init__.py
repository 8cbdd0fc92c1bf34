"""The benchmark runners behind ``wijkhub bench``, ``bench-intake`` and ``bench-linking``.

They ship in the package, importing package code only, so that an installed
``wijkhub`` runs them; they need no checkout and put nothing on ``sys.path``.

- :mod:`wijkhub.bench.pipeline` — the whole pipeline against a raw Kafka pass-through;
- :mod:`wijkhub.bench.intake` — the intake rate per source format;
- :mod:`wijkhub.bench.linking` — linking with many known persons in state.

Each needs a Kafka cluster: ``KAFKA_BOOTSTRAP_SERVERS``, or (in a checkout) the local
broker of ``wijkhub.broker``, started fresh for the run.
"""
