"""Which files of a new release the installed folder already has, and which to download.

A file whose path exists in the installed folder with the same size is a reuse candidate: the
stager hashes it and, when its SHA-256 is the manifest's, links or copies it into the staging
folder; else (or when it differs after all) its blob is downloaded. A code-only release thus
downloads the few files that changed (the executable, whose archive holds the Python code,
and ``BUILD.json``), never the Qt libraries nor the models.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

from forecode_core.updates.manifest import FileEntry, Manifest

__all__ = ["Action", "Plan", "Step", "stage_plan"]


class Action(Enum):
    LINK = "link"  # a symbolic link: made, no content
    REUSE = "reuse"  # the installed file, if its hash matches
    DOWNLOAD = "download"  # the blob, verified, unpacked


@dataclass(frozen=True)
class Step:
    entry: FileEntry
    action: Action


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    def download_bytes(self) -> int:
        """What the downloads cost if every reuse candidate matches (the blobs' lengths)."""
        return sum(
            s.entry.blob.length
            for s in self.steps
            if s.action is Action.DOWNLOAD and s.entry.blob is not None
        )

    def count(self, action: Action) -> int:
        return sum(1 for s in self.steps if s.action is action)


def stage_plan(new: Manifest, installed_sizes: Mapping[str, int]) -> Plan:
    """``installed_sizes``: the installed folder's regular files, relative POSIX path -> size."""
    steps: list[Step] = []
    for entry in new.files:
        if entry.link is not None:
            action = Action.LINK
        elif installed_sizes.get(entry.path) == entry.size:
            action = Action.REUSE
        else:
            action = Action.DOWNLOAD
        steps.append(Step(entry, action))
    return Plan(tuple(steps))
