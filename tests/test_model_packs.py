"""Model packs (issue 18): the quality pack's models installed from a local file, checked
against the pinned table, and found by ``model_store`` next to the install or in the data
folder -- never downloaded."""

from __future__ import annotations

import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

from forecode_core import models as core_models
from forecode_core.models import ModelSpec
from local_models import model_packs, model_store
from local_models.model_store import ModelIntegrityError

BODY = b"GGUF" + bytes(range(256)) * 64


@pytest.fixture
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> ModelSpec:
    """A model in the registry whose pinned file is ``BODY``."""
    spec = ModelSpec(
        id="tiny-test-model",
        title="Tiny",
        file_name="tiny-test-model.gguf",
        size=len(BODY),
        sha256=hashlib.sha256(BODY).hexdigest(),
        licence="test",
        package="tiny_test_model_not_installed",  # no PyPI package: only a pack has it
    )
    monkeypatch.setitem(core_models.MODELS, spec.id, spec)
    return spec


def _pack(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_pack_installs_into_the_data_folder_and_is_found_there(
    tmp_path: Path, tiny_model: ModelSpec
) -> None:
    pack = _pack(
        tmp_path / "pack.tar",
        {"forecode/models/tiny-test-model.gguf": BODY, "forecode/README": b"not a model"},
    )
    assert model_store.bundled_model(tiny_model.file_name) is None
    assert model_packs.pack_models(pack) == [tiny_model]
    installed = model_packs.install_pack(pack)
    data_models = model_store.pack_model_dirs()[-1]
    assert installed == [data_models / tiny_model.file_name]
    assert installed[0].read_bytes() == BODY
    assert model_store.bundled_model(tiny_model.file_name) == installed[0]
    assert model_store.ensure_model(tiny_model.id) == installed[0]
    assert tiny_model in model_store.installed_models()
    assert sorted(p.name for p in data_models.iterdir()) == [tiny_model.file_name]


def test_a_tampered_model_is_refused_and_nothing_is_left(
    tmp_path: Path, tiny_model: ModelSpec
) -> None:
    bad = BODY[:-1] + b"!"
    pack = _pack(tmp_path / "pack.tar", {"forecode/models/tiny-test-model.gguf": bad})
    target = tmp_path / "models"
    with pytest.raises(ModelIntegrityError, match=r"tiny-test-model\.gguf"):
        model_packs.install_pack(pack, target)
    assert list(target.iterdir()) == []


@pytest.mark.parametrize(
    "members",
    [
        {"forecode/models/unknown.gguf": BODY},  # not in the registry
        {"elsewhere/tiny-test-model.gguf": BODY},  # not in forecode/models
        {"forecode/models/../tiny-test-model.gguf": BODY},
    ],
)
def test_a_file_without_a_known_model_is_not_a_pack(
    tmp_path: Path, tiny_model: ModelSpec, members: dict[str, bytes]
) -> None:
    pack = _pack(tmp_path / "pack.tar", members)
    with pytest.raises(model_packs.PackError, match="no model Forecode knows"):
        model_packs.install_pack(pack, tmp_path / "models")


def test_the_command_line_says_what_went_wrong(
    tmp_path: Path, tiny_model: ModelSpec, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "junk.tar").write_bytes(b"not a tar at all")
    assert model_packs.main([str(tmp_path / "junk.tar")]) == 1
    assert "is not a Forecode model pack" in capsys.readouterr().err
    pack = _pack(tmp_path / "pack.tar", {"forecode/models/tiny-test-model.gguf": BODY})
    assert model_packs.main([str(pack)]) == 0
    assert "installed" in capsys.readouterr().out


def test_a_frozen_app_finds_a_pack_unpacked_next_to_its_executable(
    tmp_path: Path, tiny_model: ModelSpec, monkeypatch: pytest.MonkeyPatch
) -> None:
    install = tmp_path / "forecode"
    (install / "models").mkdir(parents=True)
    (install / "models" / tiny_model.file_name).write_bytes(BODY)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(install / "forecode"))
    monkeypatch.setattr(sys, "_MEIPASS", str(install / "_internal"), raising=False)
    assert model_store.pack_model_dirs()[0] == install / "models"
    assert model_store.model_path(tiny_model.id) == install / "models" / tiny_model.file_name
