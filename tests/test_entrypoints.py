"""forecode_core.entrypoints: child command lines from a checkout and from a frozen bundle."""

import subprocess
import sys

import pytest

from forecode_core.entrypoints import ENTRY_POINTS, child_command, dispatch


@pytest.mark.parametrize(
    ("module", "args", "frozen", "python", "expected"),
    [
        (
            "local_models.worker",
            ["--model", "m"],
            False,
            None,
            [sys.executable, "-m", "local_models.worker", "--model", "m"],
        ),
        (
            "local_models.worker",
            ["--model", "m"],
            True,
            None,
            [sys.executable, "--worker", "--model", "m"],
        ),
        ("cloud_server", [], True, None, [sys.executable, "--service"]),
        (
            "local_models.index.embed_worker",
            ["--nice", "10"],
            True,
            None,
            [sys.executable, "--embedder", "--nice", "10"],
        ),
        # an interpreter given explicitly (a test's) keeps -m even when frozen
        (
            "local_models.worker",
            [],
            True,
            "/usr/bin/python3",
            ["/usr/bin/python3", "-m", "local_models.worker"],
        ),
    ],
)
def test_child_command(module, args, frozen, python, expected):
    assert child_command(module, args, python=python, frozen=frozen) == expected


def test_a_module_without_a_switch_cannot_start_frozen():
    with pytest.raises(ValueError, match="no entry point"):
        child_command("bench", frozen=True)


def test_every_entry_point_is_a_runnable_module():
    import importlib.util

    for module in ENTRY_POINTS.values():
        spec = importlib.util.find_spec(module)
        assert spec is not None, module
        if spec.submodule_search_locations:  # a package runs its __main__
            assert importlib.util.find_spec(module + ".__main__") is not None, module


def test_dispatch_leaves_the_editor_alone():
    assert dispatch(["forecode"]) is False
    assert dispatch(["forecode", "some/folder"]) is False


def test_dispatch_runs_the_named_child_with_its_arguments():
    # the service's --help through the switch, in a fresh process, as the frozen app would
    code = (
        "import sys; from forecode_core.entrypoints import dispatch; "
        "dispatch(['forecode', '--service', '--help'])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "--port" in out.stdout
