"""A frozen app's models: looked up in the bundle's models folder first, used in place."""

from local_models import model_store
from local_models.index import embed_model
from local_models.model_store import MODELS, SMALL_MODEL


def test_a_bundled_model_is_used_in_place(tmp_path, monkeypatch):
    spec = MODELS[SMALL_MODEL]
    (tmp_path / spec.file_name).write_bytes(b"GGUF")
    monkeypatch.setenv("FORECODE_BUNDLED_MODELS", str(tmp_path))
    monkeypatch.setenv("FORECODE_MODEL_DIR", str(tmp_path / "cache"))
    assert model_store.ensure_model(SMALL_MODEL) == tmp_path / spec.file_name
    assert model_store.model_path(SMALL_MODEL) == tmp_path / spec.file_name
    assert spec in model_store.installed_models()
    assert not (tmp_path / "cache").exists()  # nothing assembled, nothing written


def test_without_a_bundle_the_cache_is_used(tmp_path, monkeypatch):
    monkeypatch.delenv("FORECODE_BUNDLED_MODELS", raising=False)
    monkeypatch.setenv("FORECODE_MODEL_DIR", str(tmp_path))
    assert model_store.bundled_models_dir() is None
    assert model_store.model_path(SMALL_MODEL) == tmp_path / MODELS[SMALL_MODEL].file_name


def test_the_bundled_embedding_model_is_found_without_its_source_package(tmp_path, monkeypatch):
    name = f"{embed_model.EMBED_MODEL_PREFIX}-{embed_model.DEFAULT_WEIGHT_TYPE}-0123456789abcdef"
    (tmp_path / f"{name}.gguf").write_bytes(b"GGUF")
    monkeypatch.setenv("FORECODE_BUNDLED_MODELS", str(tmp_path))

    def no_source():
        raise AssertionError("the source package must not be read")

    monkeypatch.setattr(embed_model, "source_model", no_source)
    assert embed_model.ensure_embed_model() == tmp_path / f"{name}.gguf"
