"""`python -m tools.papermill ...`: papermill's own command line, on a kernel that prints no transport warning.

papermill's CLI has no option for the kernel manager, so a plain `papermill` run starts its kernel on
jupyter_client's default manager, and ipykernel 7 logs "Kernel is running over TCP without encryption..." into the
run's output. This is the same CLI with every option (`-p`, `-f`, `--help-notebook`, ...); only its default engine
is swapped for one that starts the kernel on `tools.kernels.EncryptedKernelManager`, as `make tutorial` does.
"""
from __future__ import annotations

from papermill.cli import papermill
from papermill.engines import NBClientEngine, papermill_engines

from tools.kernels import EncryptedKernelManager


class EncryptedEngine(NBClientEngine):
    """papermill's nbclient engine, with the kernel started on an EncryptedKernelManager."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        kwargs.setdefault("kernel_manager_class", EncryptedKernelManager)
        return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)


def main(argv=None):
    papermill_engines.register(None, EncryptedEngine)  # the engine papermill uses when --engine is not given
    papermill.main(args=argv, prog_name="python -m tools.papermill")


if __name__ == "__main__":
    main()
