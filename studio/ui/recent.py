"""Things the page loads once and keeps while they are among the most recently used (models: each holds its weights
in memory)."""
from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Callable


class Recent:
    def __init__(self, size: int):
        self.size = size
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, load: Callable[[], object]):
        """What is kept under key, else load() kept there (the least recently used beyond `size` let go)."""
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        loaded = load()  # outside the lock: loading takes seconds, and other sessions may use what is kept
        with self._lock:
            self._items[key] = loaded
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return loaded
