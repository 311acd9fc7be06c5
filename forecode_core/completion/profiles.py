"""Per-model quirks for inline completion, in one registry.

A ``ModelProfile`` says how to prompt one family of models: its fill-in-the-middle (FIM) token
strings if it has them, the strings that end a completion, whether the engine prepends BOS, and
the context / prompt / output sizes. ``profile_for`` picks one from what the GGUF file says about
itself; ``get_profile`` looks one up by id (the id is what settings and benchmarks store).

Pure data and lookups: no llama.cpp import. How a profile is matched, in order:

1. the GGUF ``general.architecture`` in ``_BY_ARCHITECTURE`` (only architectures that name one
   family unambiguously: ``qwen2``, ``gemma`` and ``llama`` carry both code and chat models);
2. the model name (``general.name`` or the file name) against ``_BY_NAME``, the one table of
   name patterns, first match wins;
3. ``generic-fim`` when the GGUF declares FIM tokens (their strings replace the defaults);
4. ``generic`` (plain-text prompt, no FIM).

Sizes: ``max_context`` is the ``n_ctx`` the engine creates the context with (not the model's
trained maximum: small is fast); ``prompt_budget`` is the most prompt tokens ``render_prompt``
may use, BOS not counted; ``max_tokens`` caps a completion. They always satisfy
``prompt_budget + 1 + max_tokens <= max_context``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass

__all__ = ["PROFILES", "FimTokens", "ModelProfile", "get_profile", "profile_for"]


@dataclass(frozen=True)
class FimTokens:
    """The three FIM marker strings: ``{prefix}<code before>{suffix}<code after>{middle}``."""

    prefix: str
    suffix: str
    middle: str

    def __post_init__(self) -> None:
        if not (self.prefix and self.suffix and self.middle):
            raise ValueError("FIM token strings must be non-empty")


@dataclass(frozen=True)
class ModelProfile:
    id: str
    fim: FimTokens | None
    stop: tuple[str, ...]
    add_bos: bool
    max_context: int
    prompt_budget: int
    max_tokens: int
    description: str

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("a model profile needs an id")
        if any(not s for s in self.stop):
            raise ValueError(f"profile {self.id!r}: stop strings must be non-empty")
        if min(self.prompt_budget, self.max_tokens) <= 0:
            raise ValueError(f"profile {self.id!r}: prompt_budget and max_tokens must be > 0")
        if self.prompt_budget + 1 + self.max_tokens > self.max_context:
            raise ValueError(
                f"profile {self.id!r}: prompt_budget + BOS + max_tokens "
                f"({self.prompt_budget} + 1 + {self.max_tokens}) exceeds max_context "
                f"({self.max_context})"
            )


# The plain-text prompt (prompt.py) starts every file with a "<comment> Path: ..." header; when a
# model begins a new one it has left the file. One stop per comment syntax of prompt.py's table
# (a test keeps the two in step).
_PATH_HEADER_STOPS = ("\n# Path: ", "\n// Path: ", "\n-- Path: ", "\n<!-- Path: ", "\n/* Path: ")
# Two blank lines: the end of a top-level definition. An inline completion stops there.
_BLANK_BLOCK = "\n\n\n"

_GEMMA3 = ModelProfile(
    id="gemma3",
    fim=None,
    stop=(_BLANK_BLOCK, "<end_of_turn>", "<eos>", *_PATH_HEADER_STOPS),
    add_bos=True,
    max_context=2048,
    prompt_budget=1536,
    max_tokens=128,
    description="Gemma 3 (e.g. 270M, the default model): no FIM tokens, plain-text prompt "
    "that shows the prefix only",
)

_CODEGEMMA_FIM = FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
_CODEGEMMA = ModelProfile(
    id="codegemma",
    fim=_CODEGEMMA_FIM,
    stop=(
        _BLANK_BLOCK,
        "<|file_separator|>",
        "<eos>",
        "<end_of_turn>",
        _CODEGEMMA_FIM.prefix,
        _CODEGEMMA_FIM.suffix,
        _CODEGEMMA_FIM.middle,
        *_PATH_HEADER_STOPS,
    ),
    add_bos=True,
    max_context=4096,
    prompt_budget=3072,
    max_tokens=128,
    description="CodeGemma 2B/7B (architecture 'gemma'): <|fim_prefix|> style FIM",
)

_QWEN_FIM = FimTokens("<|fim_prefix|>", "<|fim_suffix|>", "<|fim_middle|>")
_QWEN_CODER = ModelProfile(
    id="qwen2.5-coder",
    fim=_QWEN_FIM,
    stop=(
        _BLANK_BLOCK,
        "<|endoftext|>",
        "<|fim_pad|>",
        "<|file_sep|>",
        "<|repo_name|>",
        "<|im_start|>",
        "<|im_end|>",
        _QWEN_FIM.prefix,
        _QWEN_FIM.suffix,
        _QWEN_FIM.middle,
        *_PATH_HEADER_STOPS,
    ),
    add_bos=False,
    max_context=4096,
    prompt_budget=3072,
    max_tokens=128,
    description="Qwen2.5-Coder / Qwen3-Coder (architecture 'qwen2' etc.): <|fim_prefix|> "
    "style FIM, no BOS",
)

_STARCODER_FIM = FimTokens("<fim_prefix>", "<fim_suffix>", "<fim_middle>")
_STARCODER2 = ModelProfile(
    id="starcoder2",
    fim=_STARCODER_FIM,
    stop=(
        _BLANK_BLOCK,
        "<|endoftext|>",
        "<file_sep>",
        "<fim_pad>",
        _STARCODER_FIM.prefix,
        _STARCODER_FIM.suffix,
        _STARCODER_FIM.middle,
        *_PATH_HEADER_STOPS,
    ),
    add_bos=False,
    max_context=4096,
    prompt_budget=3072,
    max_tokens=128,
    description="StarCoder / StarCoder2 (and SantaCoder-style vocabularies): <fim_prefix> "
    "style FIM, no BOS",
)

# U+FF5C FULLWIDTH VERTICAL LINE and U+2581 LOWER ONE EIGHTH BLOCK, as in DeepSeek's vocabulary.
_DEEPSEEK_FIM = FimTokens("<｜fim▁begin｜>", "<｜fim▁hole｜>", "<｜fim▁end｜>")
_DEEPSEEK_CODER = ModelProfile(
    id="deepseek-coder",
    fim=_DEEPSEEK_FIM,
    stop=(
        _BLANK_BLOCK,
        "<｜end▁of▁sentence｜>",
        "<|EOT|>",
        _DEEPSEEK_FIM.prefix,
        _DEEPSEEK_FIM.suffix,
        _DEEPSEEK_FIM.middle,
        *_PATH_HEADER_STOPS,
    ),
    add_bos=True,
    max_context=4096,
    prompt_budget=3072,
    max_tokens=128,
    description="DeepSeek-Coder (v1 on 'llama', v2 on 'deepseek2'): <｜fim▁begin｜> style FIM",
)

_GENERIC_FIM = ModelProfile(
    id="generic-fim",
    # Placeholders, StarCoder's (the most common spelling): profile_for puts the GGUF's own
    # FIM token strings here when the engine passes them.
    fim=_STARCODER_FIM,
    stop=(_BLANK_BLOCK, *_PATH_HEADER_STOPS),
    add_bos=True,
    max_context=2048,
    prompt_budget=1536,
    max_tokens=128,
    description="an unknown model whose GGUF declares FIM tokens",
)

_GENERIC = ModelProfile(
    id="generic",
    fim=None,
    stop=(_BLANK_BLOCK, *_PATH_HEADER_STOPS),
    add_bos=True,
    max_context=2048,
    prompt_budget=1536,
    max_tokens=128,
    description="an unknown model without FIM tokens: plain-text prompt, prefix only",
)

PROFILES: dict[str, ModelProfile] = {
    p.id: p
    for p in (
        _GEMMA3,
        _CODEGEMMA,
        _QWEN_CODER,
        _STARCODER2,
        _DEEPSEEK_CODER,
        _GENERIC_FIM,
        _GENERIC,
    )
}

# GGUF general.architecture -> profile id; only architectures that are one family.
_BY_ARCHITECTURE: dict[str, str] = {
    "gemma3": "gemma3",
    "gemma3n": "gemma3",
    "starcoder2": "starcoder2",
    "starcoder": "starcoder2",
}

# The one table of name patterns (searched case-insensitively in the model's name), first match
# wins, so more specific patterns go first.
_BY_NAME: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), profile_id)
    for pattern, profile_id in (
        (r"code[-_ ]?gemma", "codegemma"),
        (r"qwen[\d.]*[-_ ]?coder", "qwen2.5-coder"),
        (r"star[-_ ]?coder", "starcoder2"),
        (r"deepseek[-_ ]?coder", "deepseek-coder"),
        (r"gemma[-_ ]?3", "gemma3"),
    )
)


def get_profile(profile_id: str) -> ModelProfile:
    """The profile with this id; ``KeyError`` naming the valid ids if there is none."""
    try:
        return PROFILES[profile_id]
    except KeyError:
        valid = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown model profile {profile_id!r}; valid ids: {valid}") from None


def profile_for(
    architecture: str,
    name: str = "",
    fim_ids_present: bool = False,
    fim_token_strings: FimTokens | None = None,
) -> ModelProfile:
    """The profile for a GGUF, from its ``general.architecture`` and name (see module doc).

    ``fim_ids_present`` / ``fim_token_strings`` describe the FIM tokens the GGUF's tokenizer
    declares; they only matter when neither the architecture nor the name is known (a known
    profile keeps its own, checked, token strings).
    """
    by_arch = _BY_ARCHITECTURE.get(architecture.strip().lower())
    if by_arch is not None:
        return PROFILES[by_arch]
    for pattern, profile_id in _BY_NAME:
        if pattern.search(name):
            return PROFILES[profile_id]
    if fim_token_strings is not None:
        return dataclasses.replace(_GENERIC_FIM, fim=fim_token_strings)
    if fim_ids_present:
        return _GENERIC_FIM
    return _GENERIC
