"""``packaging/gpu_pack_check.py``'s pure parts and the GPU pack's build line (issue 18).

The check itself runs on a GPU machine (its figures: bench-results/gpu-pack-2026-12-05.json);
here: the figures' arithmetic, the parsers, where cuBLAS is found, and the CMake line and pack
folder it shares with ``packaging/build.py gpu-pack``.
"""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import REPO


def _load(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(name, REPO / "packaging" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load("gpu_pack_check")
build = check.load_build()


def test_cosines_of_equal_near_and_opposite_rows() -> None:
    a = np.array([[1.0, 0.0], [0.6, 0.8], [1.0, 1.0]])
    b = np.array([[2.0, 0.0], [0.6, 0.8001], [-1.0, -1.0]])
    figures = check.cosines(a, b)
    assert figures["cosine_min"] == pytest.approx(-1.0)
    assert figures["cosine_mean"] == pytest.approx((1.0 + 1.0 - 1.0) / 3, abs=1e-6)
    assert figures["max_abs_diff"] == pytest.approx(2.0)
    assert check.cosines(a[:2], a[:2])["cosine_min"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("module", "fatbin", "sass", "ptx", "real", "expected"),
    [
        (100, 40, 30, 10, 1, 100),  # what was measured: unchanged
        (100, 40, 30, 10, 2, 130),  # one more machine-code image: +30 of 40 stored bytes' share
        (100, 40, 30, 10, 0, 70),  # PTX alone
        (100, 0, 0, 0, 2, 100),  # no device code found: the module as it is
    ],
)
def test_fatbin_estimate(
    module: int, fatbin: int, sass: int, ptx: int, real: int, expected: int
) -> None:
    assert check.fatbin_estimate(module, fatbin, sass, ptx, real) == expected


READELF_S = """
Section Headers:
  [Nr] Name              Type            Address          Off    Size   ES Flg Lk Inf Al
  [ 9] .text             PROGBITS        0000000000012000 012000 0a0000 00  AX  0   0 16
  [15] .nv_fatbin        PROGBITS        000000000008e990 08e990 001670 00   A  0   0  8
  [28] .nvFatBinSegment  PROGBITS        00000000000a9538 0a9538 000030 00  WA  0   0  8
"""


def test_section_size_reads_readelf() -> None:
    assert check.section_size(READELF_S, ".nv_fatbin") == 0x1670
    assert check.section_size(READELF_S, ".text") == 0xA0000
    assert check.section_size(READELF_S, ".absent") == 0


def test_ninja_progress() -> None:
    text = "[1/156] Building CUDA object a.o\n[155/156] Building x\n[156/156] Linking b.so\n"
    assert check.ninja_progress(text) == "156/156"
    assert check.ninja_progress("ninja: no work to do.\n") == "?"


def test_cublas_is_found_in_the_toolkit_first_then_a_wheel(tmp_path: Path) -> None:
    cuda, wheel_site = tmp_path / "cuda", tmp_path / "site"
    wheel = wheel_site / "nvidia" / "cu13"
    for include, lib in [(cuda / "include", cuda / "lib64"), (wheel / "include", wheel / "lib")]:
        include.mkdir(parents=True)
        lib.mkdir(parents=True)
    assert check.find_cublas(cuda, [str(wheel_site)]) is None
    (wheel / "include" / "cublas_v2.h").touch()
    (wheel / "lib" / "libcublasLt.so.13").touch()
    assert check.find_cublas(cuda, [str(wheel_site)]) == (wheel / "include", wheel / "lib")
    (cuda / "include" / "cublas_v2.h").touch()
    (cuda / "lib64" / "libcublasLt.so.13").touch()
    assert check.find_cublas(cuda, [str(wheel_site)]) == (cuda / "include", cuda / "lib64")


def test_the_cmake_line_takes_a_folder_and_architectures_and_keeps_only_origin_rpath() -> None:
    src, cuda, cublas = Path("/s"), Path("/cuda"), Path("/cublas")
    shipped = build.cuda_cmake_args(src, cuda, cublas)
    assert f"-DCMAKE_CUDA_ARCHITECTURES={build.CUDA_ARCHITECTURES}" in shipped
    assert str(build.CUDA_CMAKE_BUILD) in shipped
    one = build.cuda_cmake_args(src, cuda, cublas, build_dir=Path("/b"), architectures="90")
    assert "-DCMAKE_CUDA_ARCHITECTURES=90" in one and "/b" in one
    assert [a for a in one if "ARCHITECTURES" not in a] == [
        a.replace(str(build.CUDA_CMAKE_BUILD), "/b") for a in shipped if "ARCHITECTURES" not in a
    ]
    # the module's RUNPATH: $ORIGIN alone, never the build machine's folders
    assert "-DCMAKE_BUILD_WITH_INSTALL_RPATH=ON" in shipped
    assert "-DCMAKE_INSTALL_RPATH=$ORIGIN" in shipped
    assert not any(a.startswith("-DCMAKE_BUILD_RPATH") for a in shipped)
    for flag in ("-DGGML_BACKEND_DL=ON", "-DGGML_CUDA=ON", "-DGGML_CUDA_NO_VMM=ON"):
        assert flag in shipped


def test_fill_gpu_folder_copies_the_module_its_needed_libraries_and_licences(
    tmp_path: Path,
) -> None:
    """A real ELF module that needs a library found in the search folder (as libggml-cuda.so
    needs libcudart.so.13): both go in, the library under its soname, links resolved."""
    lib_dir = tmp_path / "lib"
    lib_dir.mkdir()
    (tmp_path / "rt.c").write_text("int rt(void) { return 1; }\n")
    (tmp_path / "mod.c").write_text("int rt(void);\nint mod(void) { return rt(); }\n")
    real = lib_dir / "libfakert.so.13.0.1"
    cc = ["cc", "-shared", "-fPIC"]
    subprocess.run(
        [*cc, "-Wl,-soname,libfakert.so.13", "-o", str(real), str(tmp_path / "rt.c")], check=True
    )
    (lib_dir / "libfakert.so.13").symlink_to(real.name)
    (lib_dir / "libfakert.so").symlink_to(real.name)
    module = tmp_path / "libggml-cuda.so"
    subprocess.run(
        [*cc, "-o", str(module), str(tmp_path / "mod.c"), f"-L{lib_dir}", "-lfakert"], check=True
    )
    licence = tmp_path / "EULA.txt"
    licence.write_text("terms\n")
    gpu = tmp_path / "pack" / "gpu"
    build.fill_gpu_folder(gpu, module, [lib_dir], [licence, tmp_path / "missing.txt"])
    assert sorted(p.name for p in gpu.iterdir()) == [
        "libfakert.so.13",
        "libggml-cuda.so",
        "licenses",
    ]
    assert not (gpu / "libfakert.so.13").is_symlink()
    assert (gpu / "libfakert.so.13").read_bytes() == real.read_bytes()
    assert [p.name for p in (gpu / "licenses").iterdir()] == ["cuda-EULA.txt"]


def test_the_check_texts_are_the_same_chunks_every_time() -> None:
    texts = check.texts(16)
    assert len(texts) == 16 and texts == check.texts(16)
    assert all(0 < len(t.splitlines()) <= 30 for t in texts)
