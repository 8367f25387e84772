"""Lifetime of weights files by reference counts.

A trained member's weights file (``weights_dir/<id>.safetensors``) is shared: a
duplicate child reuses the file of the network it duplicates, so several members
may point at one file. Each member that keeps a file holds one reference; the
file is deleted when the last reference goes. Whether a file is usable is decided
from the counts, never from the filesystem, so a journal replay (resume) makes
exactly the decisions of the original run even though files deleted later in that
run are gone already.
"""
from __future__ import annotations

import os
from collections import Counter
from typing import Optional


class WeightRefs:
    def __init__(self):
        self.refs: Counter[str] = Counter()

    def acquire(self, path: Optional[str]) -> Optional[str]:
        """One more holder of ``path``; returns it (None passes through)."""
        if path:
            self.refs[path] += 1
        return path

    def share(self, path: Optional[str]) -> Optional[str]:
        """A new holder of a file some member already holds; None if no one does
        any more (the file is gone)."""
        return self.acquire(path) if path and self.refs[path] > 0 else None

    def release(self, path: Optional[str]) -> None:
        """Drop one reference; the last one deletes the file."""
        if not path or self.refs[path] <= 0:
            return
        self.refs[path] -= 1
        if not self.refs[path]:
            del self.refs[path]
            remove(path)

    def held(self, path: str) -> int:
        return self.refs[path]


def remove(path: str) -> None:
    """Delete a file if it is there (a replay may delete a file twice)."""
    try:
        os.remove(path)
    except FileNotFoundError:
        pass
