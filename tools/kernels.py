"""Notebook runs without the kernel's transport warning: papermill with an encrypting kernel manager.

ipykernel 7 logs "Kernel is running over TCP without encryption..." whenever its manager hands it TCP sockets
without CurveZMQ keys, and jupyter_client's KernelManager does exactly that by default
(`transport_encryption="disabled"`). `EncryptedKernelManager` turns encryption on ("auto": keys for every kernel
whose kernelspec declares CurveZMQ support, as ipykernel's own does), so the kernel's traffic is encrypted and it
has nothing to warn about. Older jupyter_client releases have no such setting, and the ipykernel of their time
no such warning: there it is the plain manager.

It also shuts a finished kernel down without first sending it SIGINT, as jupyter_client does to stop running
code: a run's kernel is idle by then, and the signal could only land in a late message handler, where ipykernel
logs "KeyboardInterrupt caught in kernel" (about one run in ten here). A kernel that does not stop on the shutdown
request is still killed after `shutdown_wait_time`.
"""
from __future__ import annotations

import zmq
from jupyter_client.manager import AsyncKernelManager
from traitlets import default


class EncryptedKernelManager(AsyncKernelManager):
    """jupyter_client's asynchronous kernel manager (nbclient's default) with CurveZMQ transport encryption on."""

    @default("transport_encryption")
    def _encryption_on(self):
        return "auto" if zmq.has("curve") else "disabled"  # libzmq without CURVE: unencrypted, as before

    async def _async_interrupt_kernel(self):
        if self.shutting_down:  # the run is over: ask it to shut down, without a SIGINT first
            return
        await super()._async_interrupt_kernel()


def execute_notebook(input_path, output_path, **kwargs):
    """papermill.execute_notebook(input_path, output_path, **kwargs) on an EncryptedKernelManager kernel."""
    import papermill as pm  # late import: papermill is an optional dependency (the notebooks extra)

    return pm.execute_notebook(str(input_path), str(output_path), kernel_manager_class=EncryptedKernelManager,
                               **kwargs)
