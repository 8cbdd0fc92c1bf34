"""Structured JSON logs, one event per line on stdout, for every library in the process.

structlog renders our own events; the standard-library loggers of Faust,
aiokafka and kafka-python are routed through the same JSON renderer, so an
operator's log shipper sees one format. Log calls carry references
(event_id, correlation_id, topic/partition/offset), never personal data: the
``redact_bsn`` processor is a last line of defence that masks any 9-digit
number, should one ever reach a message.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
from typing import Any

import structlog

_BSN_LIKE = re.compile(r"(?<!\d)\d{8,9}(?!\d)")


def _elfproef(digits: str) -> bool:
    padded = digits.zfill(9)
    total = sum(int(d) * w for d, w in zip(padded[:8], range(9, 1, -1), strict=True))
    return (total - int(padded[8])) % 11 == 0


def _mask(found: re.Match[str]) -> str:
    digits = found.group()
    # every 9-digit number; an 8-digit one (the BRP writes some BSNs so) when it could be one
    return "*" * len(digits) if len(digits) == 9 or _elfproef(digits) else digits


def mask_bsn_like(text: str) -> str:
    """Mask every stand-alone number that may be a BSN: the one rule for logs and dead-letter
    reasons (every 9-digit number; an 8-digit one that passes the elfproef)."""
    return _BSN_LIKE.sub(_mask, text)


def redact_bsn(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str) and _BSN_LIKE.search(value):
            event_dict[key] = mask_bsn_like(value)
    return event_dict


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
        structlog.processors.format_exc_info,
        redact_bsn,
    ]


def logging_config(level: str = "INFO", stream: str = "stdout") -> dict[str, Any]:
    """A ``logging.config.dictConfig`` that renders every stdlib record as JSON.

    Workers log to stdout; command-line tools pass ``stream="stderr"`` so that
    their stdout stays the command's output.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.EventRenamer("message"),
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "stdout": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "stream": getattr(sys, stream),
            }
        },
        "root": {"handlers": ["stdout"], "level": level},
        "loggers": {
            # Per-request chatter of the Kafka clients is noise at INFO.
            "aiokafka": {"level": "WARNING"},
            "kafka": {"level": "WARNING"},
        },
    }


def configure(level: str = "INFO", stream: str = "stdout") -> None:
    logging.config.dictConfig(logging_config(level, stream))
    structlog.configure(
        processors=[
            *_shared_processors(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def get(name: str) -> Any:
    return structlog.stdlib.get_logger(name)
