"""Apply benchmark cases from real commits: consecutive PyPI releases of real projects.

Nothing of those projects is stored in this repository: ``apply_real_cases.json`` (the
manifest) names each release pair (package, versions, the wheels' sha256), the files and the
definitions that changed between the two releases. At bench time the wheels are downloaded
from PyPI with ``pip download`` into a cache directory (``~/.cache/forecode/bench/apply-real``
or ``$FORECODE_APPLY_CASES``), checked against the manifest's sha256 and the cases are built
from them; the editor never downloads anything.

Each case: the *original* is the older release's file, the *expected* file is that file with
only the chosen definitions (and, for ``imports_reflowed``, the import section) replaced by the
newer release's text (so the expected result is well defined), and the *block* is written the
way chat models write them (``KINDS``):

* ``function``: a changed top-level function, whole, in its new form (alone, or between
  elisions);
* ``method_shorthand``: a changed method, whole, wrapped in a *shorthand* class line
  (``class Name:`` whatever the file's bases) with elisions around it;
* ``method_exact``: the same with the file's own class line;
* ``method_bare``: a changed method alone, dedented to column 0 (no class);
* ``hunks``: the changed function's signature line(s) in the new form, then only its changed
  parts with three lines of context, ``# ... existing code ...`` between them (a method
  wrapped in its shorthand class line);
* ``hunks_shorthand``: the same with the signature written in shorthand (``def name(self,
  ...):``, ``async`` kept, decorators and annotations left out) where it did not change;
* ``two_definitions``: two changed definitions of one file in one block, an elision between;
* ``imports_reflowed``: the newer release's import section written without its blank lines
  (as models reflow it), an elision, then a changed definition; the expected file keeps the
  newer release's import section as it is (with its blank lines).

``python -m bench.apply_real_cases --discover`` rewrites the manifest from the release pairs
in ``PAIRS`` (downloading them); ``python -m bench.apply_real_cases`` prints a summary.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from itertools import pairwise
from pathlib import Path

from bench.apply_cases import Case

__all__ = ["KINDS", "MANIFEST", "PAIRS", "build_real_cases", "cache_dir"]

KINDS = (
    "function",
    "method_shorthand",
    "method_exact",
    "method_bare",
    "hunks",
    "hunks_shorthand",
    "two_definitions",
    "imports_reflowed",
)
MANIFEST = Path(__file__).with_name("apply_real_cases.json")
ELISION = "# ... existing code ..."
# Definitions taken per file (the most changed files would otherwise dominate).
PER_FILE = 10

# (package on PyPI, older release, newer release): pure-Python wheels.
PAIRS: tuple[tuple[str, str, str], ...] = (
    ("attrs", "23.1.0", "23.2.0"),
    ("pyparsing", "3.1.0", "3.1.1"),
    ("pyparsing", "3.1.1", "3.1.2"),
    ("rich", "13.6.0", "13.7.0"),
    ("Jinja2", "3.1.2", "3.1.3"),
    ("requests", "2.31.0", "2.32.0"),
    ("httpx", "0.25.0", "0.25.1"),
    ("httpx", "0.25.1", "0.26.0"),
    ("packaging", "23.1", "23.2"),
    ("markdown-it-py", "2.2.0", "3.0.0"),
)


def cache_dir() -> Path:
    env = os.environ.get("FORECODE_APPLY_CASES")
    return Path(env) if env else Path.home() / ".cache" / "forecode" / "bench" / "apply-real"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _wheel(package: str, version: str, cache: Path, sha256: str | None) -> Path:
    """The release's wheel in ``cache`` (downloaded with pip when missing), checked."""
    cache.mkdir(parents=True, exist_ok=True)
    stem = package.replace("-", "_").lower()
    found = [p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--only-binary",
                ":all:",
                f"{package}=={version}",
                "-d",
                str(cache),
            ],
            check=True,
            capture_output=True,
            timeout=300,
        )
        found = [p for p in cache.glob("*.whl") if p.name.lower().startswith(f"{stem}-{version}-")]
    if len(found) != 1:
        raise RuntimeError(f"no single wheel of {package}=={version} in {cache}")
    if sha256 is not None and _sha256(found[0]) != sha256:
        raise RuntimeError(f"{found[0]} does not have the manifest's sha256 {sha256}")
    return found[0]


def _read(wheel: Path, name: str) -> str:
    with zipfile.ZipFile(wheel) as z:
        return io.TextIOWrapper(z.open(name), encoding="utf-8", newline="").read()


# ---------------------------------------------------------------------------------------------
# Definitions


@dataclass(frozen=True)
class _Def:
    qualname: str
    start: int  # 0-based first line, decorators included
    def_line: int  # 0-based line of ``def``
    body: int  # 0-based first line of the body (docstring included)
    end: int  # one past the last line
    cls: str | None  # the class header line when a method
    cls_indent: str


def _definitions(text: str) -> dict[str, list[_Def]]:
    tree = ast.parse(text)
    lines = text.splitlines()
    out: dict[str, list[_Def]] = {}

    def add(node: ast.FunctionDef | ast.AsyncFunctionDef, cls: ast.ClassDef | None) -> None:
        start = min([node.lineno] + [d.lineno for d in node.decorator_list]) - 1
        qual = f"{cls.name}.{node.name}" if cls else node.name
        header = lines[cls.lineno - 1] if cls else None
        out.setdefault(qual, []).append(
            _Def(
                qual,
                start,
                node.lineno - 1,
                node.body[0].lineno - 1,
                node.end_lineno or 0,
                header,
                header[: len(header) - len(header.lstrip())] if header else "",
            )
        )

    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            add(node, None)
        elif isinstance(node, ast.ClassDef):
            for item in node.body:
                if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
                    add(item, node)
    return out


def _changed(old: str, new: str) -> list[str]:
    """Definitions defined once in both texts whose text changed, in the old file's order."""
    a, b = _definitions(old), _definitions(new)
    la, lb = old.splitlines(), new.splitlines()
    out = []
    for q, defs in sorted(a.items(), key=lambda kv: kv[1][0].start):
        if len(defs) != 1 or len(b.get(q, ())) != 1:
            continue
        da, db = defs[0], b[q][0]
        if la[da.start : da.end] != lb[db.start : db.end]:
            out.append(q)
    return out


def _import_section(text: str) -> tuple[int, int] | None:
    """0-based [start, end) of the leading run of top-level import statements."""
    tree = ast.parse(text)
    first: int | None = None
    end = 0
    for node in tree.body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            if first is None:
                first = node.lineno - 1
            end = node.end_lineno or 0
        elif first is not None:
            break
    return None if first is None else (first, end)


# ---------------------------------------------------------------------------------------------
# Blocks


def _dedent(lines: Sequence[str], prefix: str) -> list[str]:
    return [x[len(prefix) :] if x.startswith(prefix) else x.lstrip() for x in lines]


def _shorthand(cls_line: str) -> str:
    indent = cls_line[: len(cls_line) - len(cls_line.lstrip())]
    name = cls_line.split("class", 1)[1].strip().split("(")[0].split(":")[0].strip()
    return f"{indent}class {name}:"


def _indent_of(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _whole(d: _Def, new_lines: Sequence[str], kind: str) -> list[str]:
    text = list(new_lines[d.start : d.end])
    if d.cls is None:
        if _stable(d.qualname) % 2:
            return [ELISION, "", *text, "", ELISION]
        return text
    if kind == "method_bare":
        return _dedent(text, _indent_of(new_lines[d.def_line]))
    ind = _indent_of(new_lines[d.def_line])
    return [_shorthand(d.cls), ind + ELISION, "", *text, ind + ELISION]


def _short_signature(line: str) -> str:
    """``def name(self, ...):`` for a def line (``async`` kept), ``def name(...):`` without
    self/cls."""
    head, _, rest = line.partition("(")
    first = rest.split(",", 1)[0].split(")", 1)[0].split(":", 1)[0].strip()
    params = f"{first}, ..." if first in ("self", "cls") else "..."
    return f"{head}({params}):"


def _hunks(
    dold: _Def,
    dnew: _Def,
    old_lines: Sequence[str],
    new_lines: Sequence[str],
    shorthand: bool = False,
) -> list[str] | None:
    a = list(old_lines[dold.start : dold.end])
    b = list(new_lines[dnew.start : dnew.end])
    groups = SequenceMatcher(None, a, b, autojunk=False).get_grouped_opcodes(3)
    ind = _indent_of(new_lines[dnew.def_line])
    body_ind = _indent_of(new_lines[dnew.body])
    sig = (dnew.def_line - dnew.start, dnew.body - dnew.start)  # signature lines in b
    out: list[str] = []
    if dnew.cls is not None:
        out += [_shorthand(dnew.cls), ind + ELISION, ""]
    shown = 0  # lines of b shown so far
    spans = [(g[0][3], g[-1][4]) for g in groups]
    if not spans:
        return None
    if shorthand:
        unchanged = old_lines[dold.def_line : dold.body] == new_lines[dnew.def_line : dnew.body]
        if not unchanged or spans[0][0] < sig[1]:
            return None
        out.append(_short_signature(b[sig[0]]))
        shown = sig[1]
    elif spans[0][0] > sig[0]:
        out += b[sig[0] : sig[1]]
        shown = sig[1]
    for lo, hi in spans:
        lo = max(lo, shown)
        if lo > shown:
            out.append(body_ind + ELISION)
        out += b[lo:hi]
        shown = hi
    if shown < len(b):
        out.append(body_ind + ELISION)
    if dnew.cls is not None:
        out.append(ind + ELISION)
    return out


def _replace(lines: list[str], pairs: Sequence[tuple[int, int, Sequence[str]]]) -> list[str]:
    out = list(lines)
    for lo, hi, text in sorted(pairs, key=lambda p: -p[0]):
        out[lo:hi] = list(text)
    return out


def _join(lines: Sequence[str]) -> str:
    return "\n".join(lines) + "\n"


def _cases_of_file(
    package: str, versions: str, path: str, old: str, new: str, names: Sequence[str]
) -> Iterator[Case]:
    old_lines = old.splitlines()
    new_lines = new.splitlines()
    a, b = _definitions(old), _definitions(new)
    base = f"{package}-{versions}:{path}"

    def expected(
        qs: Sequence[str],
        extra: Sequence[tuple[int, int, Sequence[str]]] = (),
    ) -> str:
        pairs = [(a[q][0].start, a[q][0].end, new_lines[b[q][0].start : b[q][0].end]) for q in qs]
        return _join(_replace(old_lines, [*pairs, *extra]))

    for q in names:
        da, db = a[q][0], b[q][0]
        kind = (
            "function"
            if da.cls is None
            else ("method_bare" if _stable(q) % 3 == 0 else "method_shorthand")
        )
        yield Case(
            f"{base}:{kind}:{q}", kind, path, old, _join(_whole(db, new_lines, kind)), expected([q])
        )
        if da.cls is not None and da.cls.strip() != _shorthand(da.cls).strip():
            ind = _indent_of(new_lines[db.def_line])
            block = [da.cls, ind + ELISION, "", *new_lines[db.start : db.end], ind + ELISION]
            yield Case(
                f"{base}:method_exact:{q}", "method_exact", path, old, _join(block), expected([q])
            )
        hunk = _hunks(da, db, old_lines, new_lines)
        if hunk is not None:
            yield Case(f"{base}:hunks:{q}", "hunks", path, old, _join(hunk), expected([q]))
        hunk = _hunks(da, db, old_lines, new_lines, shorthand=True)
        if hunk is not None:
            yield Case(
                f"{base}:hunks_shorthand:{q}",
                "hunks_shorthand",
                path,
                old,
                _join(hunk),
                expected([q]),
            )
    # Two definitions: consecutive changed ones, both top-level or in one class.
    for q1, q2 in pairwise(names):
        d1, d2 = b[q1][0], b[q2][0]
        if d1.cls != d2.cls or a[q1][0].end > a[q2][0].start:
            continue
        t1 = new_lines[d1.start : d1.end]
        t2 = new_lines[d2.start : d2.end]
        if d1.cls is None:
            block = [*t1, "", ELISION, "", *t2]
        else:
            ind = _indent_of(new_lines[d1.def_line])
            block = [
                _shorthand(d1.cls),
                ind + ELISION,
                "",
                *t1,
                "",
                ind + ELISION,
                "",
                *t2,
                ind + ELISION,
            ]
        yield Case(
            f"{base}:two_definitions:{q1}+{q2}",
            "two_definitions",
            path,
            old,
            _join(block),
            expected([q1, q2]),
        )
        break
    # Imports reflowed, with the first changed definition.
    sa, sb = _import_section(old), _import_section(new)
    if sa is not None and sb is not None and names:
        imports = new_lines[sb[0] : sb[1]]
        if (
            any(not x.strip() for x in imports)
            and sa[1] <= a[names[0]][0].start
            and _same_grouping(old_lines[sa[0] : sa[1]], imports)
        ):
            q = names[0]
            d = b[q][0]
            flat = [x for x in imports if x.strip()]
            tail = (
                _whole(d, new_lines, "method_shorthand")
                if d.cls
                else list(new_lines[d.start : d.end])
            )
            block = [*flat, "", ELISION, "", *tail]
            yield Case(
                f"{base}:imports_reflowed:{q}",
                "imports_reflowed",
                path,
                old,
                _join(block),
                expected([q], [(sa[0], sa[1], imports)]),
            )


def _groups(lines: Sequence[str]) -> dict[str, bool]:
    """Each non-blank line: whether a blank line follows it."""
    out: dict[str, bool] = {}
    for k, line in enumerate(lines):
        if line.strip():
            out[line] = k + 1 < len(lines) and not lines[k + 1].strip()
    return out


def _same_grouping(old: Sequence[str], new: Sequence[str]) -> bool:
    """Whether a block written without blank lines can say the new section's grouping: the
    lines both sections have are followed by a blank line in both or in neither, and every
    blank line of the new section follows a line of the old (else the expected file would
    not be well defined)."""
    a, b = _groups(old), _groups(new)
    if any(a[x] != b[x] for x in a.keys() & b.keys()):
        return False
    # A blank line after a line the old section does not have: the block cannot say it.
    return all(x in a for x, blank in b.items() if blank)


# ---------------------------------------------------------------------------------------------
# Manifest and cases


def discover(cache: Path) -> dict[str, object]:
    """The manifest for ``PAIRS``: each pair's wheels' sha256 and the changed definitions
    of each changed file (at most ``PER_FILE``, chosen by a stable hash)."""
    pairs = []
    for package, v_old, v_new in PAIRS:
        w_old = _wheel(package, v_old, cache, None)
        w_new = _wheel(package, v_new, cache, None)
        with zipfile.ZipFile(w_old) as z:
            names_old = set(z.namelist())
        with zipfile.ZipFile(w_new) as z:
            names_new = set(z.namelist())
        files = {}
        for name in sorted(names_old & names_new):
            if not name.endswith(".py"):
                continue
            old, new = _read(w_old, name), _read(w_new, name)
            if old == new or "\r" in old or "\r" in new:
                continue
            changed = _changed(old, new)
            if not changed:
                continue
            keep = set(sorted(changed, key=lambda q: _stable(f"{name}:{q}"))[:PER_FILE])
            files[name] = {
                "lines": old.count("\n"),
                "definitions": [q for q in changed if q in keep],
            }
        pairs.append(
            {
                "package": package,
                "old": v_old,
                "new": v_new,
                "sha256": {"old": _sha256(w_old), "new": _sha256(w_new)},
                "files": files,
            }
        )
    return {
        "about": "Release pairs and changed definitions for bench/apply_real_cases.py; "
        "the sources are downloaded from PyPI at bench time and checked against "
        "these sha256.",
        "pairs": pairs,
    }


def build_real_cases(cache: Path | None = None, manifest: Path = MANIFEST) -> list[Case]:
    """Every case of the manifest, built from the downloaded (and checked) releases."""
    cache = cache or cache_dir()
    data = json.loads(manifest.read_text(encoding="utf-8"))
    cases: list[Case] = []
    for pair in data["pairs"]:
        w_old = _wheel(pair["package"], pair["old"], cache, pair["sha256"]["old"])
        w_new = _wheel(pair["package"], pair["new"], cache, pair["sha256"]["new"])
        versions = f"{pair['old']}..{pair['new']}"
        for path, info in pair["files"].items():
            old, new = _read(w_old, path), _read(w_new, path)
            cases.extend(
                _cases_of_file(pair["package"], versions, path, old, new, info["definitions"])
            )
    return cases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apply_real_cases")
    parser.add_argument(
        "--discover",
        action="store_true",
        help="rewrite the manifest from PAIRS (downloads the releases)",
    )
    parser.add_argument("--cache", type=Path, default=None)
    args = parser.parse_args(argv)
    cache = args.cache or cache_dir()
    if args.discover:
        MANIFEST.write_text(json.dumps(discover(cache), indent=1) + "\n", encoding="utf-8")
    cases = build_real_cases(cache)
    by_kind = {k: sum(c.kind == k for c in cases) for k in KINDS}
    big = sorted({c.path for c in cases if c.original.count("\n") > 2000})
    print(
        json.dumps(
            {"cases": len(cases), "by_kind": by_kind, "files_over_2000_lines": big}, indent=1
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
