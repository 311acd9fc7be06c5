"""The model store: parts checked by hash, joined in order, a tampered part refused by name."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest

from forecode_core.models import MODELS, SERVICE_MODEL, ModelPart, ModelSpec
from local_models import model_store
from local_models.model_store import ModelIntegrityError, ensure_model


def _fake_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunks: list[bytes]) -> ModelSpec:
    """Chunk packages ``fcfake_partN/data/partNN.bin`` on sys.path, and a spec pinning them."""
    site = tmp_path / "site"
    parts = []
    for i, data in enumerate(chunks, start=1):
        pkg = site / f"fcfake_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("raise RuntimeError('a model part is data, never run')\n")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(data)
        parts.append(
            ModelPart(
                f"fcfake_part{i}", f"part{i:02d}.bin", len(data), hashlib.sha256(data).hexdigest()
            )
        )
    whole = b"".join(chunks)
    spec = ModelSpec(
        "fake",
        "Fake Model",
        "fake.gguf",
        len(whole),
        hashlib.sha256(whole).hexdigest(),
        "MIT",
        parts=tuple(parts),
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setitem(MODELS, "fake", spec)
    monkeypatch.setenv("FORECODE_MODEL_DIR", str(tmp_path / "models"))
    return spec


CHUNKS = [b"GGUF" + bytes(range(256)) * 40, b"\x01" * 7000, b"tail" * 999]


def test_parts_are_joined_in_order_verified_and_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_model(tmp_path, monkeypatch, CHUNKS)
    seen: list[tuple[int, int]] = []
    path = ensure_model("fake", lambda d, t: seen.append((d, t)))
    assert path.read_bytes() == b"".join(CHUNKS)
    assert seen[-1] == (len(b"".join(CHUNKS)),) * 2
    assert not any(m.startswith("fcfake") for m in sys.modules)  # read as data, never imported
    # the second call trusts the stamp: it does not read the parts again
    (tmp_path / "site" / "fcfake_part2" / "data" / "part02.bin").unlink()
    assert ensure_model("fake") == path


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_a_tampered_part_is_refused_with_its_name_and_nothing_is_left(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    _fake_model(tmp_path, monkeypatch, CHUNKS)
    victim = tmp_path / "site" / "fcfake_part2" / "data" / "part02.bin"
    data = bytearray(victim.read_bytes())
    if damage == "flip":
        data[100] ^= 0x40
    else:
        del data[-10:]
    victim.write_bytes(bytes(data))
    with pytest.raises(ModelIntegrityError) as err:
        ensure_model("fake")
    message = str(err.value)
    assert "fcfake-part2" in message and "part02.bin" in message
    assert "packaging/models.txt" in message  # says how to repair it
    assert not list((tmp_path / "models").glob("fake*"))  # no partial, no stamp, no model


def test_a_model_that_is_not_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = _fake_model(tmp_path, monkeypatch, CHUNKS)
    monkeypatch.setitem(
        MODELS,
        "fake",
        ModelSpec(
            spec.id,
            spec.title,
            spec.file_name,
            spec.size,
            spec.sha256,
            spec.licence,
            parts=(ModelPart("fcfake_not_there", "part01.bin", 1, "0" * 64),),
        ),
    )
    with pytest.raises(RuntimeError, match=r"not installed.*bootstrap\.py run"):
        ensure_model("fake")
    with pytest.raises(KeyError, match="unknown model"):
        ensure_model("no-such-model")


def test_the_pinned_table_matches_the_requirements_file() -> None:
    """Every part the store joins is installed by packaging/models.txt, and the part sizes
    add up to the model's pinned size."""
    req = (Path(__file__).resolve().parent.parent / "packaging" / "models.txt").read_text()
    pinned = {line.split("==")[0] for line in req.splitlines() if line and not line.startswith("#")}
    assert all(
        "--hash=sha256:" in line for line in req.splitlines() if line and not line.startswith("#")
    )
    for spec in MODELS.values():
        if spec.parts:
            assert {p.dist for p in spec.parts} <= pinned
            assert sum(p.size for p in spec.parts) == spec.size


def test_the_installed_service_model_is_assembled_and_verified() -> None:
    """The real thing: the run command installed the service model's parts; assembling them
    gives the pinned file (checked by sha256 inside ensure_model the first time)."""
    path = ensure_model(SERVICE_MODEL)
    assert path.stat().st_size == MODELS[SERVICE_MODEL].size
    assert path.with_suffix(".verified").exists()
    assert model_store.installed_models()[0].id == SERVICE_MODEL
