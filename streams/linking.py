"""What every linking stage shares: the BRP event names, an event's date, the main
household id of a unit. The stages are :mod:`person_stage`, :mod:`address_stage` and
:mod:`household_stage`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

PERSON_REGISTERED = "nl.wijkhub.population.PersonRegistered"
PERSON_DECEASED = "nl.wijkhub.population.PersonDeceased"
PERSON_DEPARTED = "nl.wijkhub.population.PersonDeparted"


def household_for_address(address_ref: str) -> str:
    """The address's main household: everyone living there who does not form another one."""
    return "H-" + hashlib.sha256(b"household:" + address_ref.encode()).hexdigest()[:24]


def event_day(event: dict[str, Any]) -> str:
    """The event's date (ISO): the day it happened, not the day it arrived."""
    occurred: dt.datetime = event["envelope"]["occurred_at"]
    return occurred.date().isoformat()
