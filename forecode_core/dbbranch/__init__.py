"""Database branches for AI test runs (issue 17), the pure part: finding the project's
development database (``detect``) and the preview's model (``preview``). The branches
themselves (copies, ``CREATE DATABASE … TEMPLATE``, the test run) are
``app.services.dbbranch``'s."""

from .detect import Detection, detect, found_from_setting
from .found import DbKind, FoundDatabase, from_url
from .preview import Change, Preview, Sample, TableChange, TestRun, merge_diff, summary_line

__all__ = [
    "Change",
    "DbKind",
    "Detection",
    "FoundDatabase",
    "Preview",
    "Sample",
    "TableChange",
    "TestRun",
    "detect",
    "found_from_setting",
    "from_url",
    "merge_diff",
    "summary_line",
]
