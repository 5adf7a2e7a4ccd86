"""Notebook runs are quiet: the kernel that papermill starts for `make tutorial` and the tests neither warns about an
unencrypted transport nor logs a KeyboardInterrupt on shutdown."""
import subprocess
import sys
from pathlib import Path

import nbformat
import papermill as pm
import pytest

from tools.kernels import EncryptedKernelManager, execute_notebook

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("Kernel is running over TCP without encryption", "KeyboardInterrupt", "WARNING", "ERROR")


@pytest.fixture
def tiny(tmp_path):
    nb = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                           "language": "python"}})
    nb.cells = [nbformat.v4.new_code_cell("x = 0", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("print('x is', x)")]
    path = tmp_path / "tiny.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_notebook_run_prints_no_kernel_noise(tiny, tmp_path, capfd):
    for run in range(3):  # the shutdown race showed about one run in ten
        execute_notebook(tiny, tmp_path / "out.ipynb", kernel_name="python3", progress_bar=False,
                         parameters=dict(x=run))
        assert f"x is {run}" in (tmp_path / "out.ipynb").read_text()
        out, err = capfd.readouterr()  # the kernel process writes to this process's own stdout and stderr
        assert not [n for n in NOISE if n in out + err], out + err


def test_the_kernel_transport_is_encrypted(tiny, tmp_path):
    import zmq

    if not zmq.has("curve"):
        pytest.skip("this libzmq has no CURVE: the kernel runs unencrypted, as jupyter_client's default does")
    assert EncryptedKernelManager(kernel_name="python3").transport_encryption == "auto"


def test_the_plain_papermill_path_is_what_warned(tiny, tmp_path, capfd):
    """The check above can see the warning: papermill's default kernel manager still prints it (ipykernel >= 7)."""
    import ipykernel

    if int(ipykernel.__version__.split(".")[0]) < 7:
        pytest.skip(f"ipykernel {ipykernel.__version__} predates the transport warning")
    pm.execute_notebook(str(tiny), str(tmp_path / "plain.ipynb"), kernel_name="python3", progress_bar=False)
    assert "Kernel is running over TCP without encryption" in "".join(capfd.readouterr())


def test_the_papermill_command_line_of_the_docs_is_quiet(tiny, tmp_path):
    """`python -m tools.papermill` (docs/parameters.md) is papermill's CLI with parameters, on the quiet kernel."""
    run = subprocess.run([sys.executable, "-m", "tools.papermill", str(tiny), str(tmp_path / "out.ipynb"),
                          "-p", "x", "7", "--no-progress-bar"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "x is 7" in (tmp_path / "out.ipynb").read_text()
    assert not [n for n in NOISE if n in run.stdout + run.stderr], run.stdout + run.stderr
