"""Apply benchmark cases: real edits of real files, with the result known.

Files are the Python standard library that ships with the interpreter (code this project did not
write). A *file* is a window of one: the module's imports, then a run of consecutive top-level
definitions (a class or functions, with the lines between them) of at most ``max_lines`` lines,
so that a rewrite fits the default model's context and a benchmark run stays short. Each case
makes one real edit to a window, of one of the kinds models write as rough code blocks, and
writes the block a chat model would: the changed part with a few lines of context and
``# ... existing code ...`` where code is left out. The expected file is the window with the
edit made line by line, so exact-match accuracy needs no judgement.

Kinds (``KINDS``):

* ``elided_body``: a guard added at the start of a function's body; the block shows the
  header, the docstring, the new lines and the first original line, then elides the rest
  (a method comes with its class header half of the time, else alone);
* ``added_parameter``: a keyword parameter added to a one-line signature and used in a new
  first line of the body; body elided;
* ``new_method``: a method added at the end of a class; the block shows the class header, an
  elision, the new method;
* ``import_addition``: ``import logging`` after the module's imports and a log line at the
  start of a function: two places in one block;
* ``new_function``: a new top-level function, the block that function alone (chat's answer to
  "add a function ... at the end of this file"): at the end of the file, separated as the
  file's last definition is;
* ``new_function_after``: a new top-level function after a named one, the block that
  function's header, an elision indented into it, two blank lines, the new function.

Only edits a careful person would apply unambiguously are made: the edited function's name is
defined once in the window, and every line of the block that stands for an original line is
that line verbatim.
"""

from __future__ import annotations

import ast
import hashlib
import sysconfig
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["DEFAULT_FILES", "KINDS", "Case", "build_cases", "windows"]

KINDS = (
    "elided_body",
    "added_parameter",
    "new_method",
    "import_addition",
    "new_function",
    "new_function_after",
)

# Small and mid-sized pure-Python modules with classes and functions.
DEFAULT_FILES = (
    "textwrap.py",
    "shlex.py",
    "json/encoder.py",
    "json/decoder.py",
    "fnmatch.py",
    "glob.py",
    "sched.py",
    "queue.py",
    "graphlib.py",
    "netrc.py",
    "string.py",
    "cmd.py",
    "reprlib.py",
    "colorsys.py",
    "copy.py",
    "bisect.py",
)

ELISION = "# ... existing code ..."
_NEW_METHOD = (
    "def describe(self):",
    '    """A one-line description of this object, for logs."""',
    '    return f"{type(self).__name__} at {id(self):#x}"',
)
_NEW_FUNCTION = (
    "def is_palindrome(text):",
    '    """Whether text reads the same backwards."""',
    "    return text == text[::-1]",
)


@dataclass(frozen=True)
class Case:
    name: str  # "<file>:<first line of the window>:<kind>:<target>"
    kind: str
    path: str  # the stdlib path the window comes from
    original: str  # the window: the file the block is applied to
    block: str
    expected: str  # the window with the edit made


def _stdlib() -> Path:
    return Path(sysconfig.get_paths()["stdlib"])


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big")


def _start(node: ast.stmt) -> int:
    """0-based first line of a statement, decorators included."""
    lines: list[int] = [node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])]
    return min(lines) - 1


def windows(text: str, max_lines: int) -> Iterator[str]:
    """The module's leading imports, then each run of consecutive top-level definitions that
    fits in ``max_lines`` lines (runs do not overlap; a definition longer than that is
    skipped)."""
    tree = ast.parse(text)
    lines = text.splitlines(keepends=True)
    body = tree.body
    defs = [i for i, n in enumerate(body) if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    if not defs:
        return
    imports = [n for n in body[: defs[0]] if isinstance(n, ast.Import | ast.ImportFrom)]
    header = "".join("".join(lines[n.lineno - 1 : n.end_lineno]) for n in imports)
    header += "\n\n" if header else ""
    budget = max_lines - header.count("\n")
    k = 0
    while k < len(defs):
        first = body[defs[k]]
        lo = _start(first)
        hi = first.end_lineno or lo
        if hi - lo > budget:
            k += 1
            continue
        j = k + 1
        while j < len(defs):
            node = body[defs[j]]
            end = node.end_lineno or 0
            if end - lo > budget:
                break
            hi = end
            j += 1
        yield header + "".join(lines[lo:hi])
        k = j


def _indent(line: str) -> str:
    return line[: len(line) - len(line.lstrip())]


def _functions(tree: ast.Module) -> list[tuple[ast.FunctionDef, ast.ClassDef | None]]:
    out: list[tuple[ast.FunctionDef, ast.ClassDef | None]] = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            out.append((node, None))
        elif isinstance(node, ast.ClassDef):
            out.extend((item, node) for item in node.body if isinstance(item, ast.FunctionDef))
    return out


def _unique_names(tree: ast.Module) -> set[str]:
    seen: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            seen[node.name] = seen.get(node.name, 0) + 1
    return {name for name, n in seen.items() if n == 1}


def _docstring(fn: ast.FunctionDef) -> ast.stmt | None:
    first = fn.body[0]
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return first
    return None


def _insertion(lines: list[str], fn: ast.FunctionDef) -> tuple[int, int] | None:
    """Where new first lines of the body go (0-based: after the docstring, else after the
    signature) and the last original line the block shows after them (the first code line,
    plus the line after it when it opens a block), or None for a body with nothing after the
    docstring."""
    doc = _docstring(fn)
    if doc is not None:
        if len(fn.body) < 2:
            return None
        ins, code = doc.end_lineno or 0, fn.body[1].lineno - 1
    else:
        ins = code = fn.body[0].lineno - 1
        while ins > fn.lineno and lines[ins - 1].strip().startswith("#"):
            ins -= 1  # comments above the first statement stay below the new lines
    if lines[code].rstrip().endswith(":") and code + 1 < len(lines):
        code += 1
    return ins, code


def _signature_lines(fn: ast.FunctionDef) -> int:
    """Lines of the signature (``def`` to the colon), from the first body line."""
    doc = _docstring(fn)
    first = doc if doc is not None else fn.body[0]
    return first.lineno - fn.lineno


def _first_param(fn: ast.FunctionDef) -> str | None:
    names = [a.arg for a in fn.args.posonlyargs + fn.args.args]
    if names and names[0] in ("self", "cls"):
        names = names[1:]
    return names[0] if names else None


def _block_for_function(
    lines: list[str],
    fn: ast.FunctionDef,
    cls: ast.ClassDef | None,
    new_sig: list[str] | None,
    new_body: list[str],
    ins: int,
    code: int,
    with_class: bool,
    lead: Sequence[str] = (),
) -> list[str]:
    """The block lines: [lead], [class header + elision], the signature (new or original),
    the docstring, the new lines, the original lines after them up to ``code``, an
    elision."""
    sig_lo = fn.lineno - 1
    out = list(lead)
    if cls is not None and with_class:
        out.append(lines[cls.lineno - 1].rstrip("\n"))
        if cls.body[0] is not fn:
            out.append(_indent(lines[sig_lo]) + ELISION)
            out.append("")
    doc = _docstring(fn)
    sig_hi = (doc.lineno - 1) if doc is not None else ins
    signature = [x.rstrip("\n") for x in lines[sig_lo:sig_hi]]
    out.extend(new_sig if new_sig is not None else signature)
    if doc is not None:
        out.extend(x.rstrip("\n") for x in lines[doc.lineno - 1 : ins])
    out.extend(new_body)
    out.extend(x.rstrip("\n") for x in lines[ins : code + 1])
    out.append(_indent(lines[code]) + ELISION)
    return out


def _edit_function(
    text: str, kind: str, tree: ast.Module, fn: ast.FunctionDef, cls: ast.ClassDef | None
) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    where = _insertion(lines, fn)
    if where is None:
        return None
    at, code = where
    ind = _indent(lines[fn.body[0].lineno - 1])
    with_class = cls is not None and _stable(fn.name) % 2 == 0
    param = _first_param(fn)
    if kind == "elided_body":
        if param is None:
            return None
        new = [
            f"{ind}if {param} is None:",
            f'{ind}    raise TypeError("{fn.name}: {param} must not be None")',
        ]
        block = _block_for_function(lines, fn, cls, None, new, at, code, with_class)
        expected = lines[:at] + [x + "\n" for x in new] + lines[at:]
        return "\n".join(block) + "\n", "".join(expected)
    if kind == "added_parameter":
        sig = lines[fn.lineno - 1]
        a = fn.args
        if (
            _signature_lines(fn) != 1
            or a.vararg
            or a.kwarg
            or a.kwonlyargs
            or a.posonlyargs
            or param is None
            or not sig.rstrip().endswith("):")
            or "strict" in text
        ):
            return None
        stripped = sig.rstrip()
        new_sig = stripped[:-2] + ", strict=False):"
        new = [
            f"{ind}if strict and not {param}:",
            f'{ind}    raise ValueError("{fn.name}: {param} is empty")',
        ]
        block = _block_for_function(lines, fn, cls, [new_sig], new, at, code, with_class)
        expected = (
            lines[: fn.lineno - 1]
            + [new_sig + "\n"]
            + lines[fn.lineno : at]
            + [x + "\n" for x in new]
            + lines[at:]
        )
        return "\n".join(block) + "\n", "".join(expected)
    if kind == "import_addition":
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        if not imports or "logging" in text:
            return None
        last = max(n.end_lineno or 0 for n in imports)
        new = [f'{ind}logging.getLogger(__name__).debug("{fn.name} called")']
        block = _block_for_function(
            lines, fn, cls, None, new, at, code, with_class, lead=("import logging", ELISION, "")
        )
        expected = (
            lines[:last]
            + ["import logging\n"]
            + lines[last:at]
            + [x + "\n" for x in new]
            + lines[at:]
        )
        return "\n".join(block) + "\n", "".join(expected)
    return None


def _new_method(text: str, cls: ast.ClassDef) -> tuple[str, str] | None:
    lines = text.splitlines(keepends=True)
    methods = [n for n in cls.body if isinstance(n, ast.FunctionDef)]
    if len(methods) < 2 or "describe" in text:
        return None
    ind = _indent(lines[methods[0].lineno - 1])
    end = cls.end_lineno or 0
    method = [ind + x for x in _NEW_METHOD]
    block = [lines[cls.lineno - 1].rstrip("\n"), ind + ELISION, "", *method]
    expected = lines[:end] + ["\n"] + [x + "\n" for x in method] + lines[end:]
    return "\n".join(block) + "\n", "".join(expected)


def _new_function(text: str, tree: ast.Module) -> tuple[str, str] | None:
    """The new function alone, expected at the end after the blank lines that precede the
    window's last top-level definition (two when it has none)."""
    if "is_palindrome" in text:
        return None
    lines = text.splitlines(keepends=True)
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    defs = [n for n in tree.body if isinstance(n, ast.FunctionDef | ast.ClassDef)]
    gap = 2
    if defs:
        k = _start(defs[-1])
        above = k
        while above and not lines[above - 1].strip():
            above -= 1
        gap = k - above if above < k else 2
    block = "\n".join(_NEW_FUNCTION) + "\n"
    expected = lines[:end] + ["\n"] * gap + [block] + lines[end:]
    return block, "".join(expected)


def _new_function_after(text: str, tree: ast.Module, fn: ast.FunctionDef) -> tuple[str, str] | None:
    """The new function right after ``fn`` (a one-line header), the block its header, an
    elision and the new function."""
    lines = text.splitlines(keepends=True)
    header = lines[fn.lineno - 1].rstrip("\n")
    if "is_palindrome" in text or not header.rstrip().endswith(":") or not fn.end_lineno:
        return None
    ind = _indent(lines[fn.body[0].lineno - 1])
    block = "\n".join([header, ind + ELISION, "", "", *_NEW_FUNCTION]) + "\n"
    new = "\n".join(_NEW_FUNCTION) + "\n"
    end = fn.end_lineno
    expected = [*lines[:end], "\n", "\n", new, *lines[end:]]
    return block, "".join(expected)


def _cases_of(path: str, window: str, offset: int) -> Iterator[Case]:
    tree = ast.parse(window)
    unique = _unique_names(tree)
    functions = [
        (fn, cls)
        for fn, cls in _functions(tree)
        if fn.name in unique and (cls is None or cls.name in unique)
    ]
    # One target per kind, chosen deterministically but not always the first function.
    for kind in ("elided_body", "added_parameter", "import_addition"):
        order = sorted(functions, key=lambda p: _stable(f"{kind}:{path}:{p[0].name}"))
        for fn, cls in order:
            made = _edit_function(window, kind, tree, fn, cls)
            if made is not None:
                target = f"{cls.name}.{fn.name}" if cls else fn.name
                yield Case(f"{path}:{offset}:{kind}:{target}", kind, path, window, *made)
                break
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name in unique:
            made = _new_method(window, node)
            if made is not None:
                yield Case(
                    f"{path}:{offset}:new_method:{node.name}", "new_method", path, window, *made
                )
                break
    made = _new_function(window, tree)
    if made is not None:
        yield Case(f"{path}:{offset}:new_function:end", "new_function", path, window, *made)
    tops = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in unique]
    for fn in sorted(tops[:-1], key=lambda n: _stable(f"after:{path}:{n.name}")):
        made = _new_function_after(window, tree, fn)
        if made is not None:
            yield Case(
                f"{path}:{offset}:new_function_after:{fn.name}",
                "new_function_after",
                path,
                window,
                *made,
            )
            break


def build_cases(
    files: Sequence[str] = DEFAULT_FILES,
    *,
    max_lines: int = 100,
    per_kind: int = 4,
    min_lines: int = 15,
) -> list[Case]:
    """Up to ``per_kind`` cases of each kind, round-robin over ``files`` (stdlib-relative)."""
    root = _stdlib()
    by_kind: dict[str, list[Case]] = {k: [] for k in KINDS}
    pools: list[list[Case]] = []
    for name in files:
        text = (root / name).read_text(encoding="utf-8")
        pool: list[Case] = []
        for n, window in enumerate(windows(text, max_lines)):
            if window.count("\n") < min_lines:
                continue
            pool.extend(_cases_of(name, window, n))
        pools.append(pool)
    # Round-robin over files so that each kind spreads across modules.
    progress = True
    while progress and any(len(v) < per_kind for v in by_kind.values()):
        progress = False
        for pool in pools:
            for case in list(pool):
                if len(by_kind[case.kind]) < per_kind:
                    by_kind[case.kind].append(case)
                    pool.remove(case)
                    progress = True
                    break
    return [c for k in KINDS for c in by_kind[k]]
