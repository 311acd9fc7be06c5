from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import platformdirs
import pytest

from forecode_core.store.settings import (
    SCHEMA,
    Settings,
    config_dir,
    data_dir,
    default_settings_text,
    load_settings,
    settings_path,
    settings_to_json,
    strip_jsonc,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "settings.json"
    path.write_text(text, encoding="utf-8")
    return path


def load_obj(tmp_path: Path, obj: object) -> tuple[Settings, list[str]]:
    return load_settings(write(tmp_path, json.dumps(obj)))


# --- dirs --------------------------------------------------------------------------------------


def test_env_overrides_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECODE_CONFIG_DIR", str(tmp_path / "cfg"))
    monkeypatch.setenv("FORECODE_DATA_DIR", str(tmp_path / "data"))
    assert config_dir() == tmp_path / "cfg"
    assert data_dir() == tmp_path / "data"
    assert settings_path() == tmp_path / "cfg" / "settings.json"


def test_platform_dirs_without_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FORECODE_CONFIG_DIR", raising=False)
    monkeypatch.delenv("FORECODE_DATA_DIR", raising=False)
    assert config_dir() == Path(platformdirs.user_config_dir("forecode", appauthor=False))
    assert data_dir() == Path(platformdirs.user_data_dir("forecode", appauthor=False))
    assert settings_path().name == "settings.json"


def test_load_without_path_uses_config_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORECODE_CONFIG_DIR", str(tmp_path))
    (tmp_path / "settings.json").write_text('{"editor.fontSize": 14}', encoding="utf-8")
    settings, problems = load_settings()
    assert settings.font_size == 14
    assert problems == []


# --- whole-file cases --------------------------------------------------------------------------


def test_missing_file_gives_defaults_silently(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "nope.json") == (Settings(), [])


def test_empty_or_comment_only_file_is_no_settings(tmp_path: Path) -> None:
    assert load_settings(write(tmp_path, "")) == (Settings(), [])
    assert load_settings(write(tmp_path, "  // nothing yet\n")) == (Settings(), [])


def test_default_text_round_trips(tmp_path: Path) -> None:
    text = default_settings_text()
    assert set(json.loads(text)) == {spec.key for spec in SCHEMA}
    assert load_settings(write(tmp_path, text)) == (Settings(), [])


def test_schema_covers_every_field() -> None:
    assert [s.field for s in SCHEMA] == [f.name for f in dataclasses.fields(Settings)]
    assert len({s.key for s in SCHEMA}) == len(SCHEMA)


def test_valid_values_are_applied(tmp_path: Path) -> None:
    settings, problems = load_obj(
        tmp_path,
        {
            "workbench.theme": "light",
            "editor.fontFamily": "Fira Code",
            "editor.fontSize": 14,
            "editor.tabSize": 2,
            "editor.insertSpaces": False,
            "editor.wordWrap": "on",
            "editor.renderWhitespace": "all",
            "editor.rulers": [80, 100],
            "files.trimTrailingWhitespace": True,
            "files.insertFinalNewline": True,
            "files.exclude": ["**/.git", "*.pyc"],
            "files.hotExitDelayMs": 1000,
            "files.eol": "\r\n",
        },
    )
    assert problems == []
    assert settings == Settings(
        theme="light",
        font_family="Fira Code",
        font_size=14,
        tab_size=2,
        insert_spaces=False,
        word_wrap=True,
        render_whitespace=True,
        rulers=(80, 100),
        trim_trailing_whitespace=True,
        insert_final_newline=True,
        files_exclude=("**/.git", "*.pyc"),
        hot_exit_delay_ms=1000,
        default_eol="\r\n",
    )
    # And back to JSON, then to the same settings.
    again, problems = load_obj(tmp_path, settings_to_json(settings))
    assert (again, problems) == (settings, [])


def test_eol_auto_is_the_platform_line_ending(tmp_path: Path) -> None:
    settings, problems = load_obj(tmp_path, {"files.eol": "auto"})
    assert problems == []
    assert settings.default_eol == ("\r\n" if os.name == "nt" else "\n")


def test_files_exclude_accepts_vscode_object_form(tmp_path: Path) -> None:
    settings, problems = load_obj(tmp_path, {"files.exclude": {"**/.git": True, "build": False}})
    assert problems == []
    assert settings.files_exclude == ("**/.git",)


def test_integral_float_is_accepted(tmp_path: Path) -> None:
    settings, problems = load_obj(tmp_path, {"editor.fontSize": 12.0})
    assert problems == []
    assert settings.font_size == 12
    assert type(settings.font_size) is int


BAD_VALUES = [
    ("editor.fontSize", 200, "out of range (6–72)"),
    ("editor.fontSize", 5, "out of range (6–72)"),
    ("editor.fontSize", True, "not a whole number"),
    ("editor.fontSize", "12", "not a whole number"),
    ("editor.fontSize", 12.5, "not a whole number"),
    ("editor.fontSize", None, "not a whole number"),
    ("editor.tabSize", 0, "out of range (1–16)"),
    ("editor.tabSize", 17, "out of range (1–16)"),
    ("editor.insertSpaces", 1, "not true or false"),
    ("editor.insertSpaces", "true", "not true or false"),
    ("workbench.theme", "blue", 'one of "dark", "light"'),
    ("workbench.theme", 1, 'one of "dark", "light"'),
    ("editor.fontFamily", 12, "not a string"),
    ("editor.wordWrap", True, 'one of "off", "on"'),
    ("editor.wordWrap", "wordWrapColumn", 'one of "off", "on"'),
    ("editor.renderWhitespace", "boundary", 'one of "none", "all"'),
    ("editor.rulers", 80, "list of whole numbers 1–500"),
    ("editor.rulers", [80, 501], "501, which is out of range (1–500)"),
    ("editor.rulers", [0], "0, which is out of range (1–500)"),
    ("editor.rulers", [True], "true, which is not a whole number"),
    ("editor.rulers", ["80"], '"80", which is not a whole number'),
    ("files.trimTrailingWhitespace", "yes", "not true or false"),
    ("files.insertFinalNewline", 0, "not true or false"),
    ("files.exclude", "**/.git", "list of strings"),
    ("files.exclude", ["ok", 3], "3, which is not a string"),
    ("files.exclude", {"**/.git": "yes"}, "expected true/false"),
    ("files.hotExitDelayMs", 49, "out of range (50–10000)"),
    ("files.hotExitDelayMs", 10001, "out of range (50–10000)"),
    ("files.eol", "\r", r'one of "\n", "\r\n", "auto"'),
    ("files.eol", "lf", r'one of "\n", "\r\n", "auto"'),
]


@pytest.mark.parametrize(("key", "value", "why"), BAD_VALUES)
def test_bad_value_keeps_default_and_names_key(
    tmp_path: Path, key: str, value: object, why: str
) -> None:
    other, ok = ("editor.tabSize", 8) if key != "editor.tabSize" else ("files.hotExitDelayMs", 900)
    settings, problems = load_obj(tmp_path, {key: value, other: ok})
    spec = next(s for s in SCHEMA if s.key == key)
    assert getattr(settings, spec.field) == spec.default
    assert settings_to_json(settings)[other] == ok  # the other key still applies
    assert len(problems) == 1
    msg = problems[0]
    assert msg.startswith(f"{key}: {json.dumps(value)} ")
    assert why in msg
    assert msg.endswith(f"; using {json.dumps(spec.default_json)}")


def test_font_size_message_matches_example(tmp_path: Path) -> None:
    _, problems = load_obj(tmp_path, {"editor.fontSize": 200})
    assert problems == ["editor.fontSize: 200 is out of range (6–72); using 11"]


def test_huge_bad_value_is_shortened_in_message(tmp_path: Path) -> None:
    _, problems = load_obj(tmp_path, {"editor.fontFamily": list(range(1000))})
    assert len(problems) == 1
    assert len(problems[0]) < 200


def test_unknown_keys_are_reported_with_suggestion(tmp_path: Path) -> None:
    settings, problems = load_obj(
        tmp_path, {"editor.fontsize": 14, "editor.fontSze": 14, "zzz": 1, "editor.tabSize": 3}
    )
    assert settings == Settings(tab_size=3)
    assert problems == [
        "unknown setting 'editor.fontsize' (ignored); did you mean 'editor.fontSize'?",
        "unknown setting 'editor.fontSze' (ignored); did you mean 'editor.fontSize'?",
        "unknown setting 'zzz' (ignored)",
    ]


# --- JSONC -------------------------------------------------------------------------------------


def test_comments_and_trailing_commas(tmp_path: Path) -> None:
    text = """\ufeff// Forecode settings
{
    /* block
       comment */
    "editor.fontSize": 13, // trailing comment
    "editor.rulers": [80, 120, /* c */ ],
    "files.exclude": [
        "*.log",
    ],
}
"""
    settings, problems = load_settings(write(tmp_path, text))
    assert problems == []
    assert settings.font_size == 13
    assert settings.rulers == (80, 120)
    assert settings.files_exclude == ("*.log",)


def test_comment_markers_inside_strings_survive(tmp_path: Path) -> None:
    text = r"""{
    "editor.fontFamily": "http://example.com/*x*/ // \"quoted\" \\",
    "files.exclude": ["a,]", "//b", "c/*"],
}"""
    settings, problems = load_settings(write(tmp_path, text))
    assert problems == []
    assert settings.font_family == 'http://example.com/*x*/ // "quoted" \\'
    assert settings.files_exclude == ("a,]", "//b", "c/*")


def test_strip_jsonc_keeps_positions() -> None:
    text = '{"a": 1, // x\n/* y\nz */ "b": [1,],}'
    out = strip_jsonc(text)
    assert len(out) == len(text)
    assert out.count("\n") == text.count("\n")
    assert json.loads(out) == {"a": 1, "b": [1]}


def test_invalid_json_reports_line_and_column(tmp_path: Path) -> None:
    text = '{\n    // comment\n    "editor.fontSize": 12\n    "editor.tabSize": 2\n}'
    settings, problems = load_settings(write(tmp_path, text))
    assert settings == Settings()
    assert problems == ["settings.json line 4, column 5: Expecting ',' delimiter — using defaults"]


def test_double_comma_is_still_an_error(tmp_path: Path) -> None:
    settings, problems = load_settings(write(tmp_path, '{"editor.fontSize": 12,,}'))
    assert settings == Settings()
    assert len(problems) == 1
    assert "line 1, column" in problems[0]


@pytest.mark.parametrize(
    ("text", "what"),
    [("[1, 2]", "a list"), ('"x"', "a string"), ("12", "a number"), ("null", "null")],
)
def test_top_level_not_an_object(tmp_path: Path, text: str, what: str) -> None:
    settings, problems = load_settings(write(tmp_path, text))
    assert settings == Settings()
    assert problems == [
        f"settings.json: the top level must be an object {{...}}, not {what} — using defaults"
    ]


def test_unreadable_path_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.mkdir()
    settings, problems = load_settings(path)
    assert settings == Settings()
    assert len(problems) == 1
    assert problems[0].startswith("settings.json could not be read (")
    assert problems[0].endswith("— using defaults")


def test_not_utf8_gives_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_bytes(b'{"editor.fontFamily": "\xff"}')
    settings, problems = load_settings(path)
    assert settings == Settings()
    assert len(problems) == 1
    assert "not valid UTF-8" in problems[0]


def test_absurd_nesting_does_not_raise(tmp_path: Path) -> None:
    settings, problems = load_settings(write(tmp_path, "[" * 200_000 + "]" * 200_000))
    assert settings == Settings()
    assert len(problems) == 1


def test_settings_are_immutable() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().font_size = 3  # type: ignore[misc]


def test_completion_model_is_auto_or_a_registry_model_id(tmp_path: Path) -> None:
    settings, problems = load_obj(tmp_path, {})
    assert settings.completion_model == "auto" and settings.completion_latency_budget_ms == 500
    settings, problems = load_obj(
        tmp_path,
        {"completion.model": "qwen2.5-coder-0.5b-instruct", "completion.latencyBudgetMs": 1500},
    )
    assert problems == [] and settings.completion_model == "qwen2.5-coder-0.5b-instruct"
    assert settings.completion_latency_budget_ms == 1500
    settings, problems = load_obj(
        tmp_path, {"completion.model": "gpt-5", "completion.latencyBudgetMs": 0}
    )
    assert settings.completion_model == "auto" and settings.completion_latency_budget_ms == 500
    assert problems[0].startswith('completion.model: "gpt-5" is not one of "auto", ')
    assert '"gemma-3-270m"' in problems[0] and "completion.latencyBudgetMs" in problems[1]
