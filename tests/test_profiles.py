"""The model profile registry (forecode_core.profiles): lookups, matching a GGUF to a profile
(completion quirks and chat format together), a model id to its profile, the invariants."""

from __future__ import annotations

import dataclasses

import pytest

from forecode_core.completion.prompt import _COMMENT_STYLES, comment_style
from forecode_core.models import MODELS
from forecode_core.profiles import (
    CHATML,
    GEMMA,
    PROFILES,
    FimTokens,
    ModelProfile,
    get_profile,
    profile_for,
    profile_of,
    profile_of_model,
)

CUSTOM = FimTokens("<PRE>", "<SUF>", "<MID>")


@pytest.mark.parametrize(
    ("architecture", "name", "fim_ids_present", "strings", "expected"),
    [
        # By architecture first.
        ("gemma3", "gemma-3-270m-it", False, None, "gemma3"),
        ("gemma3", "", True, CUSTOM, "gemma3"),  # the architecture wins over FIM metadata
        ("GEMMA3", "", False, None, "gemma3"),
        ("starcoder2", "whatever", False, None, "starcoder2"),
        ("starcoder", "", True, None, "starcoder2"),
        # Then the name table (architectures shared by code and chat models).
        ("gemma", "codegemma-2b", False, None, "codegemma"),
        ("gemma", "CodeGemma 7B", False, None, "codegemma"),
        ("qwen2", "Qwen2.5-Coder-1.5B", False, None, "qwen2.5-coder"),
        ("qwen2", "qwen2.5-coder-0.5b-q8_0.gguf", True, None, "qwen2.5-coder"),
        ("qwen3moe", "Qwen3-Coder-30B-A3B", True, None, "qwen2.5-coder"),
        ("llama", "deepseek-coder-1.3b-base", False, None, "deepseek-coder"),
        ("deepseek2", "DeepSeek-Coder-V2-Lite-Base", False, None, "deepseek-coder"),
        ("", "gemma-3-1b-it", False, None, "gemma3"),
        ("", "StarCoder2-3B", False, None, "starcoder2"),
        # Then FIM metadata, then nothing.
        ("qwen2", "Qwen2.5-0.5B-Instruct", True, None, "generic-fim"),
        ("llama", "Llama-3.2-1B", False, None, "generic"),
        ("gemma", "gemma-2b", False, None, "generic"),
        ("", "", False, None, "generic"),
    ],
)
def test_profile_for(
    architecture: str, name: str, fim_ids_present: bool, strings: FimTokens | None, expected: str
) -> None:
    assert profile_for(architecture, name, fim_ids_present, strings).id == expected


def test_generic_fim_uses_the_ggufs_own_token_strings() -> None:
    profile = profile_for("mystery", "mystery-coder", fim_token_strings=CUSTOM)
    assert profile == dataclasses.replace(PROFILES["generic-fim"], fim=CUSTOM)
    assert PROFILES["generic-fim"].fim != CUSTOM  # the registry is not changed


def test_known_profiles_keep_their_own_token_strings() -> None:
    assert profile_for("qwen2", "Qwen2.5-Coder", True, CUSTOM) == PROFILES["qwen2.5-coder"]


@pytest.mark.parametrize(
    ("profile_id", "fim"),
    [
        ("gemma3", None),
        ("generic", None),
        ("codegemma", ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")),
        ("qwen2.5-coder", ("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")),
        ("starcoder2", ("<fim_prefix>", "<fim_suffix>", "<fim_middle>")),
        (
            "deepseek-coder",
            (
                "<\uff5cfim\u2581begin\uff5c>",
                "<\uff5cfim\u2581hole\uff5c>",
                "<\uff5cfim\u2581end\uff5c>",
            ),
        ),
    ],
)
def test_fim_token_strings(profile_id: str, fim: tuple[str, str, str] | None) -> None:
    profile = get_profile(profile_id)
    assert profile.fim == (FimTokens(*fim) if fim else None)


def test_gemma3_is_the_plain_text_default() -> None:
    gemma = get_profile("gemma3")
    assert gemma.fim is None and gemma.add_bos
    assert {"\n\n\n", "<end_of_turn>", "<eos>"} <= set(gemma.stop)
    assert gemma.prompt_budget == 1536


def test_get_profile_unknown_lists_the_valid_ids() -> None:
    with pytest.raises(KeyError) as info:
        get_profile("gpt-9")
    message = str(info.value)
    assert "gpt-9" in message
    for profile_id in PROFILES:
        assert profile_id in message


@pytest.mark.parametrize("profile", list(PROFILES.values()), ids=list(PROFILES))
def test_profile_invariants(profile: ModelProfile) -> None:
    assert PROFILES[profile.id] is profile
    assert profile.prompt_budget + 1 + profile.max_tokens <= profile.max_context
    assert profile.stop and all(profile.stop)
    assert profile.description
    if profile.fim:
        # The model emitting a FIM marker means it is done.
        assert profile.id == "generic-fim" or profile.fim.prefix in profile.stop
    # The plain-text prompt's file headers, in every comment syntax, end a completion.
    for start, _ in {*_COMMENT_STYLES.values(), comment_style("unknown")}:
        assert f"\n{start} Path: " in profile.stop


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt_budget": 2000}, "exceeds max_context"),
        ({"max_tokens": 0}, "must be > 0"),
        ({"stop": ("",)}, "non-empty"),
        ({"id": ""}, "needs an id"),
    ],
)
def test_bad_profiles_are_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(PROFILES["gemma3"], **change)  # type: ignore[arg-type]


def test_fim_tokens_must_be_non_empty() -> None:
    with pytest.raises(ValueError):
        FimTokens("<a>", "", "<c>")


@pytest.mark.parametrize(
    ("architecture", "name", "template", "completion", "chat"),
    [
        ("gemma3", "gemma-3-270m-it", None, "gemma3", GEMMA),
        ("gemma", "codegemma-2b", None, "codegemma", GEMMA),
        ("qwen2", "Qwen2.5-Coder-1.5B", "<|im_start|>", "qwen2.5-coder", CHATML),
        # The chat format is the GGUF's: its architecture, else its template's markers, else
        # ChatML, whatever family its completion quirks come from.
        ("", "gemma-3-1b-it", None, "gemma3", CHATML),
        ("llama", "deepseek-coder-1.3b", "<start_of_turn>user", "deepseek-coder", GEMMA),
        ("mystery", "", None, "generic", CHATML),
    ],
)
def test_one_profile_holds_the_completion_quirks_and_the_chat_format(
    architecture: str, name: str, template: str | None, completion: str, chat: object
) -> None:
    profile = profile_for(architecture, name, chat_template=template)
    assert profile.id == completion and profile.chat is chat
    # Everything but the chat format is the registry's entry.
    assert dataclasses.replace(profile, chat=PROFILES[completion].chat) == PROFILES[completion]


def test_a_header_read_from_a_gguf_resolves_the_same() -> None:
    @dataclasses.dataclass
    class Header:
        architecture: str
        name: str
        has_fim: bool
        chat_template: str | None

    header = Header("qwen2", "Qwen2.5-0.5B-Instruct", True, "<|im_start|>")
    assert profile_of(header) == profile_for(
        "qwen2", header.name, True, chat_template="<|im_start|>"
    )
    assert profile_of(header).id == "generic-fim"
    assert profile_of(header, CUSTOM).fim == CUSTOM


@pytest.mark.parametrize("model_id", list(MODELS))
def test_every_installable_model_has_a_profile(model_id: str) -> None:
    spec = MODELS[model_id]
    profile = profile_of_model(model_id)
    assert profile is PROFILES[spec.profile]
    # What its file name alone resolves to agrees (the GGUF's header: test_chat_prompt).
    assert profile_for("", spec.file_name).id == spec.profile
    with pytest.raises(KeyError):
        profile_of_model("no-such-model")
