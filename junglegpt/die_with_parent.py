"""`python -m junglegpt.die_with_parent PID COMMAND...`: run COMMAND so that it dies with process PID.

run_all starts each papermill through this. On Linux the kernel then sends papermill SIGKILL the
moment the runner ends, however it ends (kill -9 included), and papermill's own kernel shuts
itself down within a second once papermill is gone (ipykernel watches its parent). Without it, a
killed runner left papermill and its kernel training on, and the next run started a second trainer
on the same model folder. Elsewhere (macOS, Windows) COMMAND simply runs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def main(argv: list[str]) -> None:
    parent, command = int(argv[0]), argv[1:]
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # the runner died before the signal was asked for
        sys.exit(f"the run that started this ({parent}) has ended; not starting {command[:3]}")
    os.execv(command[0], command)  # the death signal is kept across exec


if __name__ == "__main__":
    main(sys.argv[1:])
