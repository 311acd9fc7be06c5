"""The model-profile registry: how to prompt each family of models, for inline completion and for
chat, in one place, and how a model (a GGUF's header, or an id of ``forecode_core.models``) maps
to its profile.

A ``ModelProfile`` holds one family's prompt quirks: its fill-in-the-middle (FIM) token strings
if it has them, the strings that end a completion, whether the engine prepends BOS, the context
/ prompt / output sizes, and its chat format (``ChatFormat``: how a conversation is written,
rendered by ``forecode_core.chat.prompt_formats``; the completion prompt is rendered by
``forecode_core.completion.prompt``). Pure data and lookups: no llama.cpp import, no renderer.

From a GGUF (``profile_for``, or ``profile_of`` for a header read by ``local_models.gguf_info``)
----------------------------------------------------------------------------------------------
The completion quirks, in order:

1. the GGUF ``general.architecture`` in ``_BY_ARCHITECTURE`` (only architectures that name one
   family unambiguously: ``qwen2``, ``gemma`` and ``llama`` carry both code and chat models);
2. the model name (``general.name`` or the file name) against ``_BY_NAME``, the one table of
   name patterns, first match wins (a pattern may also need an architecture,
   ``_NAME_NEEDS_ARCHITECTURE``: Zed's Zeta v1 is "zeta" in the name on ``qwen2``);
3. ``generic-fim`` when the GGUF declares FIM tokens (their strings replace the defaults);
4. ``generic`` (plain-text prompt, no FIM).

The chat format (``format_for``; the profile's ``chat``): the architecture in
``_CHAT_BY_ARCHITECTURE``, else the markers the GGUF's own chat template writes, else ChatML,
the documented fallback. A registry entry's ``chat`` is its family's format; the GGUF's header
decides when a model is matched.

From an id
----------
``get_profile(id)`` looks a profile up by its id (what settings and benchmarks store);
``profile_of_model(model_id)`` gives the profile of a model Forecode installs
(``ModelSpec.profile``; a test checks that it is what the model's own GGUF resolves to).

Sizes: ``max_context`` is the ``n_ctx`` the engine creates the context with (not the model's
trained maximum: small is fast); ``prompt_budget`` is the most prompt tokens ``render_prompt``
may use, BOS not counted; ``max_tokens`` caps a completion. They always satisfy
``prompt_budget + 1 + max_tokens <= max_context``.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Protocol

from forecode_core.models import MODELS

__all__ = [
    "CHATML",
    "DEFAULT_FORMAT",
    "FORMATS",
    "GEMMA",
    "PROFILES",
    "ChatFormat",
    "FimTokens",
    "GgufHeader",
    "ModelProfile",
    "format_for",
    "get_format",
    "get_profile",
    "profile_for",
    "profile_of",
    "profile_of_model",
]


# ---------------------------------------------------------------------------------------------
# chat formats


@dataclass(frozen=True)
class ChatFormat:
    """How one family of models expects a conversation to be written."""

    id: str
    system_prefix: str | None  # None: no system role (the text joins the next user turn)
    user_prefix: str
    assistant_prefix: str  # also the generation prompt that ends every rendering
    turn_end: str  # after every finished turn
    stop: tuple[str, ...]  # strings that end the model's reply
    markers: tuple[str, ...]  # special strings broken up inside user text
    add_bos: bool = True  # the engine adds BOS (llama.cpp only does where the vocab wants)
    description: str = ""


GEMMA = ChatFormat(
    id="gemma",
    system_prefix=None,
    user_prefix="<start_of_turn>user\n",
    assistant_prefix="<start_of_turn>model\n",
    turn_end="<end_of_turn>\n",
    stop=("<end_of_turn>", "<start_of_turn>"),
    markers=("<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>"),
    description="Gemma 2/3 turns; no system role (folded into the first user turn)",
)

CHATML = ChatFormat(
    id="chatml",
    system_prefix="<|im_start|>system\n",
    user_prefix="<|im_start|>user\n",
    assistant_prefix="<|im_start|>assistant\n",
    turn_end="<|im_end|>\n",
    stop=("<|im_end|>", "<|im_start|>", "<|endoftext|>"),
    markers=("<|im_start|>", "<|im_end|>", "<|endoftext|>"),
    description="ChatML: the generic fallback for models not in the registry",
)

FORMATS: dict[str, ChatFormat] = {f.id: f for f in (GEMMA, CHATML)}
DEFAULT_FORMAT = CHATML

_CHAT_BY_ARCHITECTURE: dict[str, str] = {
    "gemma": "gemma",
    "gemma2": "gemma",
    "gemma3": "gemma",
    "gemma3n": "gemma",
    "qwen2": "chatml",
    "qwen3": "chatml",
    "qwen2moe": "chatml",
    "qwen3moe": "chatml",
}
# A GGUF chat template that writes these markers speaks that format.
_TEMPLATE_HINTS: tuple[tuple[str, str], ...] = (
    ("<start_of_turn>", "gemma"),
    ("<|im_start|>", "chatml"),
)


def get_format(format_id: str) -> ChatFormat:
    """The format with this id; an unknown id lists the valid ones."""
    try:
        return FORMATS[format_id]
    except KeyError:
        raise KeyError(
            f"unknown chat format {format_id!r} (expected one of {', '.join(sorted(FORMATS))})"
        ) from None


def format_for(architecture: str, chat_template: str | None = None) -> ChatFormat:
    """The format for a model: its architecture in the registry, else the markers its GGUF
    chat template uses, else ``DEFAULT_FORMAT`` (ChatML)."""
    by_arch = _CHAT_BY_ARCHITECTURE.get(architecture.lower())
    if by_arch is not None:
        return FORMATS[by_arch]
    for marker, format_id in _TEMPLATE_HINTS:
        if chat_template and marker in chat_template:
            return FORMATS[format_id]
    return DEFAULT_FORMAT


# ---------------------------------------------------------------------------------------------
# model profiles


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
    chat: ChatFormat = CHATML  # the family's chat format (see the module docstring)

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
    chat=GEMMA,
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
    chat=GEMMA,
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

# Zed's open next-edit model Zeta (v1: a Qwen2.5-Coder-7B fine-tune, published as GGUF by the
# community): Qwen's vocabulary, FIM and turns for completions and chat, and its own next-edit
# format (``forecode_core.next_edit.native_zeta`` registers it for this profile's id).
_ZETA = dataclasses.replace(
    _QWEN_CODER,
    id="zeta",
    description="Zed's Zeta (a Qwen2.5-Coder-7B fine-tune for next-edit prediction): Qwen's "
    "FIM and turns; next edit in its own format (forecode_core.next_edit.native_zeta)",
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
        _ZETA,
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
        # Zeta v1 by name ("Zeta", "zed-industries_zeta-Q4_K_M"); never Zeta 2 / 2.1 (Seed-Coder,
        # another format), and only on Qwen2's architecture (_NAME_NEEDS_ARCHITECTURE)
        (r"(?<![a-z0-9])zeta(?![a-z0-9])(?![-_ .]?v?2)", "zeta"),
        (r"code[-_ ]?gemma", "codegemma"),
        (r"qwen[\d.]*[-_ ]?coder", "qwen2.5-coder"),
        (r"star[-_ ]?coder", "starcoder2"),
        (r"deepseek[-_ ]?coder", "deepseek-coder"),
        (r"gemma[-_ ]?3", "gemma3"),
    )
)

# A name pattern's profile only for a GGUF of one of these architectures (a fine-tune's name
# alone says little about the weights: Zeta v1 is Qwen2).
_NAME_NEEDS_ARCHITECTURE: dict[str, tuple[str, ...]] = {"zeta": ("qwen2",)}


def get_profile(profile_id: str) -> ModelProfile:
    """The profile with this id; ``KeyError`` naming the valid ids if there is none."""
    try:
        return PROFILES[profile_id]
    except KeyError:
        valid = ", ".join(sorted(PROFILES))
        raise KeyError(f"unknown model profile {profile_id!r}; valid ids: {valid}") from None


class GgufHeader(Protocol):
    """What a GGUF says about itself (``local_models.gguf_info.ModelInfo`` has these)."""

    @property
    def architecture(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def has_fim(self) -> bool: ...

    @property
    def chat_template(self) -> str | None: ...


def profile_for(
    architecture: str,
    name: str = "",
    fim_ids_present: bool = False,
    fim_token_strings: FimTokens | None = None,
    *,
    chat_template: str | None = None,
) -> ModelProfile:
    """The profile for a GGUF, from its ``general.architecture``, name and chat template (see
    the module docstring).

    ``fim_ids_present`` / ``fim_token_strings`` describe the FIM tokens the GGUF's tokenizer
    declares; they only matter when neither the architecture nor the name is known (a known
    profile keeps its own, checked, token strings). The profile's ``chat`` is
    ``format_for(architecture, chat_template)``.
    """
    profile = _completion_profile(architecture, name, fim_ids_present, fim_token_strings)
    chat = format_for(architecture, chat_template)
    return profile if chat is profile.chat else dataclasses.replace(profile, chat=chat)


def profile_of(header: GgufHeader, fim_token_strings: FimTokens | None = None) -> ModelProfile:
    """The profile for a GGUF whose header was read (``gguf_info.read_model_info``)."""
    return profile_for(
        header.architecture,
        header.name or "",
        header.has_fim,
        fim_token_strings,
        chat_template=header.chat_template,
    )


def profile_of_model(model_id: str) -> ModelProfile:
    """The profile of a model of ``forecode_core.models.MODELS``; ``KeyError`` for an unknown
    id."""
    return get_profile(MODELS[model_id].profile)


def _completion_profile(
    architecture: str,
    name: str,
    fim_ids_present: bool,
    fim_token_strings: FimTokens | None,
) -> ModelProfile:
    by_arch = _BY_ARCHITECTURE.get(architecture.strip().lower())
    if by_arch is not None:
        return PROFILES[by_arch]
    for pattern, profile_id in _BY_NAME:
        needs = _NAME_NEEDS_ARCHITECTURE.get(profile_id)
        if needs is not None and architecture.strip().lower() not in needs:
            continue
        if pattern.search(name):
            return PROFILES[profile_id]
    if fim_token_strings is not None:
        return dataclasses.replace(_GENERIC_FIM, fim=fim_token_strings)
    if fim_ids_present:
        return _GENERIC_FIM
    return _GENERIC
