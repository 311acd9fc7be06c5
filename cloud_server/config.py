"""The service's configuration: one frozen dataclass, checked before anything listens.

Secrets never come from the command line (``ps`` shows it to every user): the bearer tokens
come from ``FORECODE_CLOUD_TOKEN`` or a token file, the OpenAI-compatible backend's API key
from ``FORECODE_OPENAI_API_KEY`` only.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

__all__ = [
    "BACKEND_NAMES",
    "DEFAULT_MAX_MESSAGE_BYTES",
    "DEFAULT_MAX_UPLOAD_PENDING_BYTES",
    "DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN",
    "DEFAULT_REFUSAL_LOG_INTERVAL_S",
    "INDEX_STORE_KINDS",
    "OPENAI_KEY_ENV",
    "TOKEN_ENV",
    "BackendName",
    "ConfigError",
    "ServerConfig",
    "StoreKind",
    "is_loopback",
    "openai_key_from_env",
    "read_token_file",
]

TOKEN_ENV = "FORECODE_CLOUD_TOKEN"
OPENAI_KEY_ENV = "FORECODE_OPENAI_API_KEY"


class BackendName(StrEnum):
    """What answers the service's requests (``--backend``)."""

    LLAMA = "llama"  # llama.cpp in the service's process
    OPENAI = "openai"  # an OpenAI-compatible HTTP server


class StoreKind(StrEnum):
    """Where the index keeps its embeddings (``--index-store``)."""

    EMBEDDED = "embedded"  # SQLite + numpy, no server
    MILVUS = "milvus"  # Milvus (Lite locally, or a cluster)


# (plain strings: argparse shows its choices with repr)
BACKEND_NAMES: tuple[str, ...] = tuple(name.value for name in BackendName)
INDEX_STORE_KINDS: tuple[str, ...] = tuple(kind.value for kind in StoreKind)
DEFAULT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
# IndexSync uploads: file entries and deletions held until the commit message (chunks are
# stored as they arrive and are not counted). 8 MiB holds the entries of some 15,000 changed
# files in one commit; the client commits in batches of at most 4 MiB
# (cloud_client.index_sync.MAX_COMMIT_BYTES). Held entries stay in their wire form, so the
# memory an uncommitted upload takes is close to these bytes; the commit itself briefly needs
# about ten times more (measured: 15 MB of entries with 360,000 chunk references peaked at
# +175 MB while the store checked them), which is what keeps these defaults modest.
DEFAULT_MAX_UPLOAD_PENDING_BYTES = 8 * 1024 * 1024
DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN = 16 * 1024 * 1024
# Refused calls (no token, a wrong one): counted, and logged at most once per interval.
DEFAULT_REFUSAL_LOG_INTERVAL_S = 10.0
MIN_TOKEN_CHARS = 16


class ConfigError(ValueError):
    """A configuration the service refuses to run with; the text says what to change."""


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    name = host.strip().strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def read_token_file(path: str | os.PathLike[str]) -> tuple[str, ...]:
    """The accepted tokens in a file: one per line, blank lines and ``#`` comments skipped."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the token file {path}: {exc}") from None
    tokens = tuple(
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    if not tokens:
        raise ConfigError(f"the token file {path} holds no token")
    return tokens


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 0  # 0: a free port, reported once listening
    tokens: tuple[str, ...] = ()  # accepted bearer tokens
    tls_cert: str | None = None  # PEM certificate chain
    tls_key: str | None = None  # PEM private key
    backend: str = BackendName.LLAMA
    model_path: str | None = None  # None: the default model (from PyPI)
    slots: int = 2  # requests served at once
    n_ctx: int = 4096  # per slot
    default_max_tokens: int = 512
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    grace_s: float = 5.0  # drain time on shutdown
    max_queue: int = 16  # requests waiting for a slot (more: RESOURCE_EXHAUSTED)
    openai_url: str | None = None  # e.g. http://10.0.0.5:8000 (the /v1/... is added)
    openai_model: str | None = None
    openai_api_key: str | None = field(default=None, repr=False)
    openai_timeout_s: float = 30.0  # connect / between-bytes timeout
    # IndexSync Upload: bytes of file entries and deletions one call, and all the calls of
    # one token together, may hold before the commit; more is refused (RESOURCE_EXHAUSTED).
    max_upload_pending_bytes: int = DEFAULT_MAX_UPLOAD_PENDING_BYTES
    max_upload_pending_bytes_per_token: int = DEFAULT_MAX_UPLOAD_PENDING_BYTES_PER_TOKEN
    max_uploads: int = 8  # IndexSync uploads at once (each holds a thread)
    refusal_log_interval_s: float = DEFAULT_REFUSAL_LOG_INTERVAL_S

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError for a configuration that must not run."""
        if self.backend not in BACKEND_NAMES:
            raise ConfigError(
                f"unknown backend {self.backend!r} (expected one of {', '.join(BACKEND_NAMES)})"
            )
        if not self.tokens:
            raise ConfigError(
                "no access token configured: set FORECODE_CLOUD_TOKEN or pass --token-file"
            )
        for token in self.tokens:
            if len(token) < MIN_TOKEN_CHARS or any(c.isspace() for c in token):
                raise ConfigError(
                    f"access tokens must be at least {MIN_TOKEN_CHARS} characters without spaces"
                )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both a certificate (--tls-cert) and a key (--tls-key)")
        if not is_loopback(self.host) and self.tls_cert is None:
            raise ConfigError(
                f"refusing to listen on {self.host} without TLS: bearer tokens "
                "would cross the network in clear text; pass --tls-cert and "
                "--tls-key, or listen on 127.0.0.1"
            )
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port {self.port} is out of range (0-65535)")
        if self.slots < 1:
            raise ConfigError("slots must be at least 1")
        if self.max_queue < 0:
            raise ConfigError("max_queue must not be negative")
        if self.n_ctx < 256:
            raise ConfigError("n_ctx must be at least 256 tokens")
        if not 0 < self.default_max_tokens < self.n_ctx:
            raise ConfigError("default_max_tokens must be positive and below n_ctx")
        if self.max_message_bytes < 1024:
            raise ConfigError("max_message_bytes must be at least 1024")
        if self.grace_s < 0:
            raise ConfigError("grace_s must not be negative")
        if self.max_upload_pending_bytes < 64 * 1024:
            raise ConfigError("max_upload_pending_bytes must be at least 64 KiB")
        if self.max_upload_pending_bytes_per_token < self.max_upload_pending_bytes:
            raise ConfigError(
                "max_upload_pending_bytes_per_token must be at least max_upload_pending_bytes"
            )
        if self.max_uploads < 1:
            raise ConfigError("max_uploads must be at least 1")
        if not self.refusal_log_interval_s > 0:
            raise ConfigError("refusal_log_interval_s must be positive")
        if self.backend == BackendName.OPENAI and not (self.openai_url and self.openai_model):
            raise ConfigError("the openai backend needs --openai-url and --openai-model")
        if self.openai_url and not self.openai_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"openai_url must start with http:// or https://, not {self.openai_url!r}"
            )

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None

    @property
    def thread_pool_size(self) -> int:
        """Handler threads: every slot and every queued request, every upload, plus a few
        for Info, health and the quick index calls (a queued Chat call holds a handler thread
        while it waits, an upload while it waits for its client's next message)."""
        return self.slots + self.max_queue + self.max_uploads + 4


def openai_key_from_env() -> str | None:
    """The OpenAI-compatible backend's API key (environment only, never argv)."""
    return os.environ.get(OPENAI_KEY_ENV) or None
