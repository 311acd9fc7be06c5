"""The chat's markdown shows names as written (``app.ui.chat_markdown.render_markdown``): a
``FILE:`` / ``NEW FILE:`` / ``DELETE FILE:`` header's path as code, never "httpx/**init**.py",
and paths, dotted names and dunder names in running text keep their underscores, while
``__bold words__``, ``_italic_``, code spans and links render as before. Real markdown-it."""

from __future__ import annotations

import pytest

from app.ui.chat_markdown import render_markdown


@pytest.mark.parametrize(
    ("source", "html"),
    [
        ("FILE: httpx/__init__.py", "<p>FILE: <code>httpx/__init__.py</code></p>"),
        ("NEW FILE: pkg/__main__.py", "<p>NEW FILE: <code>pkg/__main__.py</code></p>"),
        ("DELETE FILE: a/_old_.py", "<p>DELETE FILE: <code>a/_old_.py</code></p>"),
        ("FILE: __init__.py", "<p>FILE: <code>__init__.py</code></p>"),
        ("file: Makefile", "<p>file: <code>Makefile</code></p>"),
        (
            "**NEW FILE:** `pkg/__main__.py`",
            "<p><strong>NEW FILE:</strong> <code>pkg/__main__.py</code></p>",
        ),
        (
            "**FILE: x/__init__.py**",
            "<p><strong>FILE: <code>x/__init__.py</code></strong></p>",
        ),
        ("### FILE: src/__init__.py", "<h3>FILE: <code>src/__init__.py</code></h3>"),
        ("Edit: app/_x_.py", "<p>Edit: <code>app/_x_.py</code></p>"),
        ("Edit: done", "<p>Edit: done</p>"),  # prose, not a header
        ("File: see below", "<p>File: see below</p>"),
    ],
)
def test_a_file_headers_path_is_code(source: str, html: str) -> None:
    assert render_markdown(source).strip() == html


@pytest.mark.parametrize(
    ("source", "present"),
    [
        ("the __init__ method", "the __init__ method"),
        ("see httpx/__init__.py.", "see httpx/__init__.py."),
        ("set __version__ and __all__", "set __version__ and __all__"),
        ("call obj.__dict__ or a._b_", "call obj.__dict__ or a._b_"),
        ("in **httpx/__init__.py**", "in <strong>httpx/__init__.py</strong>"),
        ("snake_case_name stays", "snake_case_name stays"),
        ("__bold text__ and _it_", "<strong>bold text</strong> and <em>it</em>"),
        ("`a__b__` code", "<code>a__b__</code> code"),
        ("[__init__.py](http://x/__y__)", '<a href="http://x/__y__">__init__.py</a>'),
        ("<http://x/__a__/>", '<a href="http://x/__a__/">http://x/__a__/</a>'),
    ],
)
def test_names_in_running_text_keep_their_underscores(source: str, present: str) -> None:
    html = render_markdown(source)
    assert present in html, html
    if "_" in source and "<strong>" not in present:
        assert "<strong>" not in html and "<em>" not in html, html


def test_an_indented_header_in_a_code_block_stays_code() -> None:
    html = render_markdown("    FILE: a/__init__.py")
    assert "<pre><code>FILE: a/__init__.py" in html
    assert "`" not in html
