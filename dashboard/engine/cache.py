"""A memory-bounded, thread-safe cache that computes each key once, even when asked at once.

The dashboard serves every browser session from its own thread. When a class of students opens
the same photo, they ask for the same map at the same moment: the first asker computes it and
the others wait for that result instead of computing it again. Entries are dropped, least
recently used first, when their total size passes the budget in bytes.
"""

import dataclasses
import threading
from collections import OrderedDict

import numpy as np


def size_of(value) -> int:
    """Bytes held by arrays and byte strings inside a value (dataclasses, dicts, lists, tuples)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if isinstance(value, (bytes, bytearray)):
        return len(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(size_of(getattr(value, field.name)) for field in dataclasses.fields(value))
    if isinstance(value, dict):
        return sum(size_of(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return sum(size_of(item) for item in value)
    return 64


class SizedCache:
    def __init__(self, budget_bytes: int):
        self.budget = budget_bytes
        self._entries = OrderedDict()  # key -> (value, size)
        self._pending = {}  # key -> Event set when the computing thread is done
        self._lock = threading.Lock()
        self.computed = 0  # how many values were computed (the rest were shared)

    @property
    def size(self) -> int:
        with self._lock:
            return sum(size for _, size in self._entries.values())

    def get(self, key, compute):
        """The cached value for `key`, or compute() once (other threads asking meanwhile wait for it).
        An exception is raised to the computing thread only; a waiting thread then computes itself."""
        while True:
            with self._lock:
                if key in self._entries:
                    self._entries.move_to_end(key)
                    return self._entries[key][0]
                pending = self._pending.get(key)
                if pending is None:
                    self._pending[key] = threading.Event()
                    break
            pending.wait()
        try:
            value = compute()
        except BaseException:
            with self._lock:
                self._pending.pop(key).set()
            raise
        with self._lock:
            self.computed += 1
            self._entries[key] = (value, size_of(value))
            total = sum(size for _, size in self._entries.values())
            while total > self.budget and len(self._entries) > 1:
                _, (_, size) = self._entries.popitem(last=False)
                total -= size
            self._pending.pop(key).set()
        return value

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
