"""Audit entries: one record per access to personal data, for the privacy officer (FG).

The worker's operator query and the team inbox write the same AuditEntry to
the audit topic, and wait for Kafka's acknowledgement before they serve any
data: there is no unaudited read.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


def entry(
    actor: str, action: str, resource: str, allowed: bool, reason: str, channel: str
) -> dict[str, Any]:
    """An AuditEntry record: who (account name, never a token), what, when, allowed or not."""
    return {
        "at": dt.datetime.now(dt.UTC),
        "actor": actor,
        "action": action,
        "resource": resource,
        "allowed": allowed,
        "reason": reason,
        "channel": channel,
    }
