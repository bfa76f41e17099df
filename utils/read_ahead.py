"""Running a producer of items (decompression, hashing) on a thread of its own, a few items ahead.

zlib's inflate and hashlib on large buffers release the GIL, so a file's blocks can be decompressed
and hashed on one core while another thread parses the previous block. The consumer sees the same
items in the same order, and an exception of the producer at the point where it happened.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Generator, Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(items: Iterator[T], depth: int = 2, name: str = "read-ahead") -> Generator[T, None, None]:
    """Yield what `items` yields, produced on a thread up to `depth` items ahead (so memory holds
    at most `depth` + 2 items). Closing the generator early stops the producer and waits for it."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def offer(item: object) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(item):
                    return
        except BaseException as exc:  # noqa: BLE001 - re-raised in the consumer
            offer(_Failed(exc))
            return
        finally:
            close = getattr(items, "close", None)
            if close is not None and stop.is_set():
                close()
        offer(_DONE)

    thread = threading.Thread(target=produce, name=name, daemon=True)
    thread.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                raise item.error
            yield cast(T, item)
    finally:
        stop.set()
        thread.join()
