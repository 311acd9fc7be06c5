"""The small workspace the find-in-files tests search: ignored folders and files, CRLF, a
legacy encoding, a binary file and a .git folder."""

from __future__ import annotations

from pathlib import Path


def make_search_tree(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "src" / "pkg").mkdir(parents=True)
    (root / "build").mkdir()
    (root / "node_modules" / "lib").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / ".gitignore").write_text("build/\n*.log\n")
    (root / "src" / "a.py").write_bytes(b"def params(param):\r\n    return Param + params\r\n")
    (root / "src" / "pkg" / "b.js").write_text("const param = 1;\n// PARAM\n")
    (root / "src" / "legacy.txt").write_bytes("caf\xe9 param\n".encode("cp1252"))
    (root / "src" / "data.bin").write_bytes(b"param\x00\x01\x02")
    (root / "build" / "out.py").write_text("param\n")
    (root / "debug.log").write_text("param\n")
    (root / "node_modules" / "lib" / "x.js").write_text("param\n")
    (root / ".git" / "config").write_text("param\n")
    return root
