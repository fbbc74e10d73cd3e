#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
# pty-run.py OUT CMD...: runs CMD with stdin, stdout and stderr on a new
# pseudo-terminal (what an interactive shell gives a program), writes every
# byte it printed there to OUT, and exits with CMD's status.
import os
import pty
import sys

out = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
data = b""
while True:
    try:
        b = os.read(fd, 4096)
    except OSError:  # EIO: the last writer closed the terminal
        break
    if not b:
        break
    data += b
_, status = os.waitpid(pid, 0)
with open(out, "wb") as f:
    f.write(data)
sys.exit(os.waitstatus_to_exitcode(status))
