"""A quick probe of edit-pattern propagation's latency on real files (not yet a registered
benchmark: ``python -m bench next_edit`` comes with the replay of real commits).

    python -m bench.propagation_probe [FILE NAME]...

For each file and identifier: rename the first bare code occurrence of the name, then time
``propose`` with the mask given (the editor's case: Scintilla's styles are already there),
with the scanner's mask computed on each call, and the masks alone. Then other files: the
rename's ``cross_file_pattern`` run by ``app.services.propagation_sites.find_other_sites``
over the file's folder tree (the stdlib's for the defaults: some 2,000 Python files, most
without the name: the prefilter's case), its default bounds. Prints JSON.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from app.services.propagation_sites import find_other_sites
from forecode_core.next_edit.lexmask import Kind, mask_for, python_mask
from forecode_core.next_edit.propagation import Edit, cross_file_pattern, propose

STDLIB = Path(json.__file__).parent.parent
DEFAULT = [
    # parameters: the rename stays in the function
    (str(STDLIB / "argparse.py"), "action"),
    (str(STDLIB / "argparse.py"), "self"),
    # module-level names: the whole file
    (str(STDLIB / "argparse.py"), "_"),
    (str(STDLIB / "argparse.py"), "ArgumentError"),
    (str(STDLIB / "typing.py"), "_type_check"),
]
RUNS = 31


def _ms(fn: Callable[[], object], runs: int = RUNS) -> tuple[float, float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return round(statistics.median(times), 3), round(times[int(len(times) * 0.9)], 3)


def _first_code_word(text: str, name: str) -> int:
    mask = mask_for(text, "x.py")
    pos = text.find(name)
    while pos >= 0:
        before = text[pos - 1] if pos else " "
        after = text[pos + len(name)] if pos + len(name) < len(text) else " "
        bare = not (before.isalnum() or before in "_.") and not (after.isalnum() or after == "_")
        if bare and mask.kind_at(pos) is Kind.CODE:
            return pos
        pos = text.find(name, pos + 1)
    raise SystemExit(f"no bare code occurrence of {name!r}")


def probe(path: str, name: str) -> dict[str, object]:
    text = Path(path).read_text(encoding="utf-8")
    pos = _first_code_word(text, name)
    new = name + "_renamed"
    after = text[:pos] + new + text[pos + len(name) :]
    history = [Edit(pos, name, new)]
    caret = pos + len(new)
    mask = mask_for(after, path)
    found = propose(after, history, caret, path=path, mask=mask)
    return {
        "file": path,
        "chars": len(text),
        "lines": text.count("\n"),
        "rename": name,
        "proposals": len(found),
        "propose_mask_given_ms": _ms(lambda: propose(after, history, caret, path=path, mask=mask)),
        "propose_with_scanner_mask_ms": _ms(lambda: propose(after, history, caret, path=path)),
        "scanner_mask_ms": _ms(lambda: mask_for(after, path)),
        "tokenize_mask_ms": _ms(lambda: python_mask(after), runs=7),
        "other_files": _other_files(path, after, history),
    }


def _other_files(path: str, after: str, history: list[Edit]) -> dict[str, object]:
    pattern = cross_file_pattern(after, history, path)
    if pattern is None:
        return {"pattern": None}
    root = Path(path).parent
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.py"))
    result = find_other_sites(pattern, origin=path, root=root, files=files)
    return {
        "pattern": pattern.label,
        "files": len(files),
        "files_looked_at": result.files_looked_at,
        "files_searched": result.files_searched,
        "sites": len(result.sites),
        "stopped": result.stopped,
        "ms": _ms(lambda: find_other_sites(pattern, origin=path, root=root, files=files), runs=3),
    }


def main(argv: list[str]) -> int:
    pairs = list(zip(argv[::2], argv[1::2], strict=True)) if argv else DEFAULT
    rows = [probe(path, name) for path, name in pairs]
    print(
        json.dumps(
            {"unit": "ms (p50, p90)", "python": sys.version.split()[0], "rows": rows}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
