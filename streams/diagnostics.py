"""``kill -USR1 <worker pid>``: the worker logs what it is waiting for, without stopping.

A worker that holds records without processing them shows no error: its lag just stays.
The operator (or a test that waited too long) then needs to know where each task waits
and what the fetch loop and the commit guard hold. One log line per task (its awaited
code locations) and one with the delivery and commit state: code locations, topic
names, partitions, offsets and counts only, never a key or a value.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import faust

from wijkhub.logs import get as get_logger
from wijkhub.streams.faust_adapter import Processed
from wijkhub.streams.faust_delivery import Delivery, fetch_state

log = get_logger("wijkhub.streams")

STACK_FRAMES = 12  # innermost frames per task: enough to see what it awaits


def _where(task: asyncio.Task[Any]) -> list[str]:
    """The task's await chain, outermost first: where each coroutine waits."""
    found: list[str] = []
    step: Any = task.get_coro()
    while step is not None and len(found) < STACK_FRAMES:
        frame = getattr(step, "cr_frame", None) or getattr(step, "gi_frame", None)
        if frame is None:
            break
        name = frame.f_code.co_filename.rsplit("/", 2)[-1]
        found.append(f"{name}:{frame.f_lineno} {frame.f_code.co_name}")
        step = getattr(step, "cr_await", None) or getattr(step, "gi_yieldfrom", None)
    return found


def _tp(tp: Any) -> str:
    return f"{tp.topic}/{tp.partition}"


def dump(app: faust.App, delivery: Delivery, guard: Callable[[], Processed]) -> None:
    """Log every task's stack, and the delivery and commit state (see the module doc)."""
    for task in asyncio.all_tasks():
        log.info("task", name=task.get_name(), where=_where(task))
    consumer: Any = app.consumer
    processed = guard()
    log.info(
        "delivery and commits",
        generation=app.consumer_generation_id,
        rebalancing=app.rebalancing,
        flow_suspended=consumer.suspend_flow.is_set(),
        flow_active=app.flow_control.is_active(),
        inbox={stage: len(queue) for stage, queue in delivery.inbox.items()},
        assigned=sorted(_tp(tp) for tp in consumer.assignment()),
        read_offset={_tp(tp): o for tp, o in consumer._read_offset.items()},
        committed={_tp(tp): o for tp, o in consumer._committed_offset.items()},
        unacked=len(consumer._unacked_messages),
        skipped={_tp(tp): sorted(o)[:5] for tp, o in processed.skipped.items()},
        rewound={_tp(tp): at for tp, (at, _) in processed.rewound.items()},
        held=sorted(_tp(tp) for tp in processed.held),
        start={_tp(tp): o for tp, o in processed.start.items()},
        active=sorted(_tp(tp) for tp in consumer._active_partitions or ()),
        paused=sorted(_tp(tp) for tp in consumer._paused_partitions),
        buffered=sorted(_tp(tp) for tp in consumer._buffered_partitions),
        fetch=fetch_state(consumer),
    )


def on_signal(app: faust.App, delivery: Delivery, guard: Callable[[], Processed]) -> None:
    """Install the SIGUSR1 handler when the worker starts (not at import or build time)."""

    @app.task  # type: ignore[untyped-decorator]  # mode's decorator is unannotated
    async def install() -> None:
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, dump, app, delivery, guard)
