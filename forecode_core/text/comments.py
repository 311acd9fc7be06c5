"""Comment toggling (Ctrl+/), as pure functions over lines of text.

Line comments (``#``, ``//``): when every non-blank line is commented, the prefix (and one
space after it) is removed; otherwise every non-blank line gets ``prefix + " "`` inserted at the
smallest indentation of the block, so the comment markers line up. Blank lines are untouched.
Languages with only block comments (HTML, CSS, Markdown) wrap the lines in the block markers,
or unwrap them when the block already starts and ends with them.
"""

from __future__ import annotations

__all__ = ["toggle_block_comment", "toggle_line_comment"]


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" \t"))


def toggle_line_comment(lines: list[str], prefix: str) -> list[str]:
    """Comment or uncomment ``lines`` (without line endings) with a line-comment ``prefix``."""
    content = [ln for ln in lines if ln.strip()]
    if not content:
        return list(lines)
    if all(ln.lstrip(" \t").startswith(prefix) for ln in content):
        out = []
        for ln in lines:
            if not ln.strip():
                out.append(ln)
                continue
            col = _indent(ln)
            rest = ln[col + len(prefix) :]
            if rest.startswith(" "):
                rest = rest[1:]
            out.append(ln[:col] + rest)
        return out
    col = min(_indent(ln) for ln in content)
    return [ln[:col] + prefix + " " + ln[col:] if ln.strip() else ln for ln in lines]


def toggle_block_comment(lines: list[str], start: str, end: str) -> list[str]:
    """Wrap ``lines`` in ``start … end`` markers, or unwrap them if already wrapped."""
    if not any(ln.strip() for ln in lines):
        return list(lines)
    first = next(i for i, ln in enumerate(lines) if ln.strip())
    last = max(i for i, ln in enumerate(lines) if ln.strip())
    out = list(lines)
    head, tail = out[first], out[last]
    col = _indent(head)
    if head[col:].startswith(start) and tail.rstrip().endswith(end):
        inner = head[col + len(start) :]
        out[first] = head[:col] + (inner[1:] if inner.startswith(" ") else inner)
        tail = out[last].rstrip()
        trailing = out[last][len(tail) :]
        body = tail[: len(tail) - len(end)]
        out[last] = (body[:-1] if body.endswith(" ") else body) + trailing
        return out
    out[first] = head[:col] + start + " " + head[col:]
    out[last] = out[last] + " " + end
    return out
