"""Leave a parallel run together, or abort it: an error on some ranks never leaves the rest waiting.

fe2x agrees on every user error it can foresee (each rank raises the same one), but an error
raised on some ranks only (a bug, a fault of one node's file system) would leave the other ranks
blocked in their next collective call for ever. A rank that stops with an error therefore
enters a non-blocking barrier on a communicator of its own (the run's could match it against
the collective call the other ranks are in): if every rank arrives within the grace time the
run ends normally with its exit code; otherwise the ranks that did not arrive are stuck, and
the job is aborted (``MPI_Abort``), which mpiexec and Slurm turn into a failed job instead of a
hung one. A rank that finished waits for the others as long as they work.
"""

from __future__ import annotations

import sys
import time

from mpi4py import MPI

__all__ = ["GRACE_SECONDS", "Watchdog"]

#: How long a stopping rank waits for the others before it aborts the job. Errors that fe2x
#: agrees on reach every rank within one collective call, so this only needs to cover the
#: longest stretch between two collective calls of a healthy run (one RVE solve).
GRACE_SECONDS = 120.0


class Watchdog:
    """The way out of a run on ``comm``: made by every rank at the start (collective).

    Args:
        comm: the run's communicator.
    """

    def __init__(self, comm: MPI.Comm) -> None:
        self.comm = comm.Dup() if comm.size > 1 else comm

    def leave(self, code: int, why: str = "", grace: float | None = None) -> int:
        """Return ``code`` once every rank has come here; abort the job if they do not.

        Args:
            code: this rank's exit code.
            why: why this rank stopped, said if it has to abort the job (only rank 0 prints
                the errors the ranks agree on, so a rank-local one would go unsaid).
            grace: seconds to wait for the other ranks (default :data:`GRACE_SECONDS`).
        """
        comm = self.comm
        if comm.size == 1:
            return code
        grace = GRACE_SECONDS if grace is None else grace
        request = comm.Ibarrier()
        if code == 0:  # a rank that finished waits as long as the others work (rank 0 writes)
            request.Wait()
            comm.Free()
            return code
        deadline = time.monotonic() + grace
        while not request.Test():
            if time.monotonic() > deadline:
                said = f": {why}" if why else ""
                print(
                    f"fe2x: error: rank {comm.rank} stopped (exit code {code}{said}) while other "
                    f"ranks did not within {grace:g} s; aborting the job so that it does not hang",
                    file=sys.stderr,
                    flush=True,
                )
                comm.Abort(code or 1)
            time.sleep(0.01)
        comm.Free()
        return code
