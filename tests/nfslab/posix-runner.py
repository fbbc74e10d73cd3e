#!/usr/bin/env python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""posix-runner: POSIX file system conformance cases for the NFS lab.

Runs named cases (open, read, write, ...), each a list of assertions on
the system calls and on the attributes they leave behind (st_nlink,
st_size, st_ctime, st_mtime, st_atime), in a directory that is either
given (--dir, e.g. a local tmpfs or ext4 dir) or an NFSv3 mount the
runner makes itself (--server). Python 3 standard library only: the
runner is copied into a VM and run there as root.

  posix-runner.py --list
  posix-runner.py --dir DIR [CASES]
  posix-runner.py --server HOST --port P --export PATH --mountpoint DIR
                  [--wait SECONDS] [CASES]
  posix-runner.py --server ... --suite NFSTEST_DIR [CASES]

CASES is a comma-separated list (or several arguments); "all" or none is
every case. With --server the runner first waits up to --wait seconds for
the server's TCP port (and fails at once, naming the address, when
nothing listens), mounts with vers=3,proto=tcp,port=P,mountport=P,nolock,
runs the cases and unmounts. --suite runs an upstream nfstest checkout's
nfstest_posix with the same server and case list instead of our cases.

Output: one line per failed assertion, one PASS/FAIL line per case, then
"N passed, N failed" (cases). Exit status: 0 every case passed, 1 some
failed (or the server, the mount or the suite failed), 2 usage error.
"""

import argparse
import ctypes
import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
import time

CASES = {}


def case(name, doc):
    def register(fn):
        CASES[name] = (fn, doc)
        return fn

    return register


class Failed(Exception):
    """An assertion failed in a way that makes the rest of the case moot."""


class Ctx:
    """One case's working directory and its assertion tally."""

    def __init__(self, root, name, verbose):
        self.name = name
        self.dir = os.path.join(root, name)
        self.verbose = verbose
        self.n = 0
        self.failures = []
        os.mkdir(self.dir)
        # Other uids (the chown, access and unlink cases) must reach it.
        os.chmod(self.dir, 0o755)

    def p(self, *names):
        return os.path.join(self.dir, *names)

    def ok(self, cond, what):
        self.n += 1
        if not cond:
            self.failures.append(what)
            print(f"  FAIL {self.name}: {what}", flush=True)
        elif self.verbose:
            print(f"  ok   {self.name}: {what}", flush=True)
        return bool(cond)

    def eq(self, got, want, what):
        return self.ok(got == want, f"{what}: got {got!r}, want {want!r}")

    def err(self, want_errno, fn, *args, what):
        """Asserts fn(*args) fails with want_errno (one errno or a tuple)."""
        wants = want_errno if isinstance(want_errno, tuple) else (want_errno,)
        names = "/".join(errno.errorcode[e] for e in wants)
        try:
            r = fn(*args)
        except OSError as e:
            return self.ok(e.errno in wants,
                           f"{what}: got {errno.errorcode.get(e.errno, e.errno)}, want {names}")
        if isinstance(r, int) and fn in (os.open,):
            os.close(r)
        return self.ok(False, f"{what}: succeeded, want {names}")

    def must(self, fn, *args, what, **kw):
        """Calls fn(*args, **kw); a failure is an assertion failure and ends the case."""
        self.n += 1
        try:
            return fn(*args, **kw)
        except OSError as e:
            msg = f"{what}: {e.strerror} ({errno.errorcode.get(e.errno, e.errno)})"
            self.failures.append(msg)
            print(f"  FAIL {self.name}: {msg}", flush=True)
            raise Failed(msg) from None


class Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


UTIME_NOW = (1 << 30) - 1
UTIME_OMIT = (1 << 30) - 2
AT_FDCWD = -100
_libc = ctypes.CDLL(None, use_errno=True)


def utimensat(path, atime, mtime):
    """utimensat(2) itself, for UTIME_OMIT and UTIME_NOW (os.utime has neither);
    atime and mtime are (sec, nsec) pairs."""
    ts = (Timespec * 2)(Timespec(*atime), Timespec(*mtime))
    if _libc.utimensat(AT_FDCWD, os.fsencode(path), ts, 0) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), path)


def tick():
    """Lets the clock move past the file system's timestamp granularity."""
    time.sleep(0.03)


def ns(st, field):
    return getattr(st, field + "_ns")


def write_file(path, data, mode=0o644):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def read_file(path):
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        out = b""
        while True:
            b = os.read(fd, 1 << 20)
            if not b:
                return out
            out += b
    finally:
        os.close(fd)


def drop_cache(fd):
    """Drops the clean cached pages of fd, so the next read asks the file
    system (the server, on NFS) again."""
    os.fsync(fd)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    except OSError:
        pass


@case("open", "O_CREAT|O_EXCL, O_TRUNC, O_APPEND, O_DIRECTORY, O_NOFOLLOW, mode and errors")
def t_open(c):
    f = c.p("f")
    dst = os.stat(c.dir)
    tick()
    fd = c.must(os.open, f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640, what="O_CREAT|O_EXCL of a new file")
    st = os.fstat(fd)
    c.ok(stat.S_ISREG(st.st_mode), "the new file is a regular file")
    c.eq(stat.S_IMODE(st.st_mode), 0o640 & ~UMASK, "mode of the new file (umask applied)")
    c.eq(st.st_size, 0, "size of the new file")
    c.eq(st.st_nlink, 1, "st_nlink of the new file")
    c.eq(st.st_uid, os.geteuid(), "owner of the new file")
    os.write(fd, b"hello world")
    os.close(fd)
    d2 = os.stat(c.dir)
    c.ok(ns(d2, "st_mtime") > ns(dst, "st_mtime"), "create moves the directory's mtime")
    c.ok(ns(d2, "st_ctime") > ns(dst, "st_ctime"), "create moves the directory's ctime")
    c.err(errno.EEXIST, os.open, f, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600,
          what="O_CREAT|O_EXCL of an existing file")
    fd = c.must(os.open, f, os.O_WRONLY | os.O_CREAT, 0o600, what="O_CREAT of an existing file")
    c.eq(os.fstat(fd).st_size, 11, "O_CREAT without O_TRUNC keeps the data")
    c.eq(stat.S_IMODE(os.fstat(fd).st_mode), 0o640 & ~UMASK, "O_CREAT of an existing file keeps its mode")
    os.close(fd)
    before = os.stat(f)
    tick()
    fd = c.must(os.open, f, os.O_WRONLY | os.O_TRUNC, what="O_TRUNC")
    st = os.fstat(fd)
    os.close(fd)
    c.eq(st.st_size, 0, "O_TRUNC empties the file")
    c.ok(ns(st, "st_mtime") > ns(before, "st_mtime"), "O_TRUNC of a non-empty file moves mtime")
    c.ok(ns(st, "st_ctime") > ns(before, "st_ctime"), "O_TRUNC of a non-empty file moves ctime")
    write_file(f, b"abc")
    fd = c.must(os.open, f, os.O_WRONLY | os.O_APPEND, what="O_APPEND")
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"def")
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, b"ghi")
    os.close(fd)
    c.eq(read_file(f), b"abcdefghi", "O_APPEND writes at the end whatever the offset")
    c.err(errno.ENOENT, os.open, c.p("missing"), os.O_RDONLY, what="open of a missing file")
    c.err(errno.ENOENT, os.open, c.p("nodir", "f"), os.O_RDONLY | os.O_CREAT, 0o644,
          what="O_CREAT in a missing directory")
    c.err(errno.ENOTDIR, os.open, c.p("f", "x"), os.O_RDONLY, what="a regular file as a directory")
    c.err(errno.ENOTDIR, os.open, f, os.O_RDONLY | os.O_DIRECTORY, what="O_DIRECTORY of a regular file")
    fd = c.must(os.open, c.dir, os.O_RDONLY | os.O_DIRECTORY, what="O_DIRECTORY of a directory")
    c.ok(stat.S_ISDIR(os.fstat(fd).st_mode), "O_DIRECTORY gives the directory")
    os.close(fd)
    c.err(errno.EISDIR, os.open, c.dir, os.O_WRONLY, what="a directory opened for writing")
    os.symlink("f", c.p("l"))
    c.err(errno.ELOOP, os.open, c.p("l"), os.O_RDONLY | os.O_NOFOLLOW, what="O_NOFOLLOW of a symlink")
    fd = c.must(os.open, c.p("l"), os.O_RDONLY, what="open through a symlink")
    c.eq(os.fstat(fd).st_ino, os.stat(f).st_ino, "open follows a symlink to its target")
    os.close(fd)
    fd = c.must(os.open, f, os.O_RDONLY | os.O_NOFOLLOW, what="O_NOFOLLOW of a regular file")
    os.close(fd)
    os.symlink("dangling-target", c.p("dl"))
    fd = c.must(os.open, c.p("dl"), os.O_WRONLY | os.O_CREAT, 0o600, what="O_CREAT through a dangling symlink")
    os.close(fd)
    c.ok(os.path.exists(c.p("dangling-target")), "O_CREAT through a dangling symlink creates its target")
    c.err(errno.EEXIST, os.open, c.p("l"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600,
          what="O_CREAT|O_EXCL of a symlink")
    fd = c.must(os.open, f, os.O_RDONLY, what="O_RDONLY")
    c.err(errno.EBADF, os.write, fd, b"x", what="write on an O_RDONLY fd")
    os.close(fd)
    fd = c.must(os.open, f, os.O_WRONLY, what="O_WRONLY")
    c.err(errno.EBADF, os.read, fd, 1, what="read on an O_WRONLY fd")
    os.close(fd)
    fd = c.must(os.open, c.p("ro"), os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o444,
                what="O_RDWR|O_CREAT with mode 0444")
    c.eq(os.write(fd, b"owner"), 5, "the creating fd writes despite mode 0444")
    os.close(fd)
    c.eq(read_file(c.p("ro")), b"owner", "data written through the 0444 creating fd")
    if os.geteuid() != 0:
        c.err(errno.EACCES, os.open, c.p("ro"), os.O_WRONLY, what="O_WRONLY of a 0444 file")
    names = sorted(os.listdir(c.dir))
    c.eq(names, ["dangling-target", "dl", "f", "l", "ro"], "directory entries after the opens")


@case("read", "read at EOF, short reads, holes read as zeros, atime after read")
def t_read(c):
    f = c.p("f")
    data = bytes(range(256)) * 512  # 128 KiB
    write_file(f, data)
    c.eq(read_file(f), data, "read back 128 KiB")
    fd = c.must(os.open, f, os.O_RDONLY, what="open for reading")
    c.eq(os.read(fd, 10), data[:10], "first 10 bytes")
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 10, "offset after reading 10 bytes")
    os.lseek(fd, len(data) - 5, os.SEEK_SET)
    c.eq(os.read(fd, 100), data[-5:], "a read across EOF is short")
    c.eq(os.read(fd, 100), b"", "a read at EOF returns 0 bytes")
    os.lseek(fd, len(data) + 4096, os.SEEK_SET)
    c.eq(os.read(fd, 100), b"", "a read past EOF returns 0 bytes")
    os.close(fd)
    h = c.p("holes")
    fd = os.open(h, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"end", 1 << 20)
    drop_cache(fd)
    os.close(fd)
    got = read_file(h)
    c.eq(len(got), (1 << 20) + 3, "size of a file with a 1 MiB hole")
    c.ok(got[: 1 << 20] == bytes(1 << 20), "a hole reads as zeros")
    c.eq(got[1 << 20:], b"end", "data after the hole")
    # atime: set it far back, drop the cached pages so the read reaches
    # the file system, read, and the atime moved forward.
    os.utime(f, ns=(1_000_000_000 * 10**9, os.stat(f).st_mtime_ns))
    st0 = os.stat(f)
    c.eq(st0.st_atime_ns, 1_000_000_000 * 10**9, "atime set back by utime")
    fd = os.open(f, os.O_RDONLY)
    drop_cache(fd)
    os.close(fd)
    tick()
    fd = os.open(f, os.O_RDONLY)
    os.read(fd, 4096)
    os.close(fd)
    st1 = os.stat(f)
    c.ok(st1.st_atime_ns > st0.st_atime_ns, "read moves an old atime forward")
    c.eq(st1.st_mtime_ns, st0.st_mtime_ns, "read leaves mtime alone")
    c.eq(st1.st_size, len(data), "read leaves the size alone")
    dfd = os.open(c.dir, os.O_RDONLY)
    c.err(errno.EISDIR, os.read, dfd, 10, what="read of a directory fd")
    os.close(dfd)


@case("write", "write, extend, overwrite, mtime/ctime/size after write, EBADF, EFBIG-free 4 GiB offset")
def t_write(c):
    f = c.p("f")
    fd = c.must(os.open, f, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644, what="create")
    st0 = os.fstat(fd)
    tick()
    c.eq(os.write(fd, b"x" * 1000), 1000, "write of 1000 bytes returns 1000")
    st1 = os.fstat(fd)
    c.eq(st1.st_size, 1000, "size after the write")
    c.ok(ns(st1, "st_mtime") > ns(st0, "st_mtime"), "write moves mtime")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "write moves ctime")
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 1000, "offset after the write")
    os.lseek(fd, 10, os.SEEK_SET)
    os.write(fd, b"HELLO")
    c.eq(os.fstat(fd).st_size, 1000, "an overwrite inside the file keeps the size")
    big = os.urandom(3 << 20)
    os.lseek(fd, 0, os.SEEK_END)
    n = 0
    while n < len(big):
        n += os.write(fd, big[n:])
    c.eq(os.fstat(fd).st_size, 1000 + len(big), "size after appending 3 MiB")
    os.close(fd)
    got = read_file(f)
    c.eq(got[:10], b"x" * 10, "bytes before the overwrite")
    c.eq(got[10:15], b"HELLO", "the overwritten bytes")
    c.eq(got[15:1000], b"x" * 985, "bytes after the overwrite")
    c.ok(got[1000:] == big, "3 MiB of random data read back intact")
    fd = os.open(f, os.O_WRONLY)
    os.lseek(fd, (4 << 30) + 7, os.SEEK_SET)
    c.eq(os.write(fd, b"far"), 3, "a write at 4 GiB + 7")
    c.eq(os.fstat(fd).st_size, (4 << 30) + 10, "size after the write at 4 GiB + 7")
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.eq(os.pread(fd, 3, (4 << 30) + 7), b"far", "data at 4 GiB + 7")
    c.eq(os.pread(fd, 4, 1 << 30), bytes(4), "the hole below 4 GiB reads as zeros")
    os.close(fd)
    c.eq(os.stat(f).st_nlink, 1, "st_nlink after writes")
    fd = os.open(f, os.O_WRONLY)
    c.eq(os.write(fd, b""), 0, "a write of 0 bytes returns 0")
    os.close(fd)
    c.err(errno.EBADF, os.write, fd, b"x", what="write on a closed fd")
    # Two fds of the same file see each other's writes.
    a = os.open(f, os.O_RDWR)
    b = os.open(f, os.O_RDWR)
    os.pwrite(a, b"SHARED", 100)
    c.eq(os.pread(b, 6, 100), b"SHARED", "a write through one fd is seen through another")
    os.close(a)
    os.close(b)


@case("pread", "pread/pwrite at offsets, the file offset untouched, O_APPEND")
def t_pread(c):
    f = c.p("f")
    fd = c.must(os.open, f, os.O_RDWR | os.O_CREAT, 0o644, what="create")
    c.eq(os.pwrite(fd, b"0123456789", 0), 10, "pwrite of 10 bytes at 0")
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 0, "pwrite leaves the offset at 0")
    c.eq(os.pwrite(fd, b"abc", 3), 3, "pwrite at 3")
    c.eq(os.pread(fd, 10, 0), b"012abc6789", "pread after an overwrite")
    c.eq(os.pread(fd, 4, 8), b"89", "pread across EOF is short")
    c.eq(os.pread(fd, 4, 10), b"", "pread at EOF")
    c.eq(os.pread(fd, 4, 1000), b"", "pread past EOF")
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 0, "pread leaves the offset at 0")
    os.lseek(fd, 5, os.SEEK_SET)
    os.pread(fd, 3, 0)
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 5, "pread leaves a non-zero offset alone")
    c.eq(os.pwrite(fd, b"Z", 20), 1, "pwrite past EOF")
    c.eq(os.fstat(fd).st_size, 21, "size after pwrite past EOF")
    c.eq(os.pread(fd, 11, 10), bytes(10) + b"Z", "the gap reads as zeros")
    for i in range(64):
        os.pwrite(fd, bytes([i]) * 512, i * 512)
    ok = all(os.pread(fd, 512, i * 512) == bytes([i]) * 512 for i in range(64))
    c.ok(ok, "64 pwrites of 512 bytes read back by pread")
    c.err(errno.EINVAL, os.pread, fd, 1, -1, what="pread at a negative offset")
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.err(errno.EBADF, os.pwrite, fd, b"x", 0, what="pwrite on an O_RDONLY fd")
    os.close(fd)
    # Linux: pwrite on an O_APPEND fd appends (a documented deviation).
    fd = os.open(f, os.O_WRONLY | os.O_APPEND)
    size = os.fstat(fd).st_size
    os.pwrite(fd, b"tail", 0)
    os.close(fd)
    c.eq(os.stat(f).st_size, size + 4, "pwrite on an O_APPEND fd appends (Linux)")


@case("lseek", "SEEK_SET/CUR/END, past EOF, negative offsets, SEEK_DATA/SEEK_HOLE")
def t_lseek(c):
    f = c.p("f")
    fd = c.must(os.open, f, os.O_RDWR | os.O_CREAT, 0o644, what="create")
    os.write(fd, b"x" * 100)
    c.eq(os.lseek(fd, 0, os.SEEK_SET), 0, "SEEK_SET 0")
    c.eq(os.lseek(fd, 10, os.SEEK_CUR), 10, "SEEK_CUR +10")
    c.eq(os.lseek(fd, -5, os.SEEK_CUR), 5, "SEEK_CUR -5")
    c.eq(os.lseek(fd, 0, os.SEEK_END), 100, "SEEK_END 0")
    c.eq(os.lseek(fd, -1, os.SEEK_END), 99, "SEEK_END -1")
    c.eq(os.lseek(fd, 1000, os.SEEK_SET), 1000, "SEEK_SET past EOF")
    c.eq(os.fstat(fd).st_size, 100, "seeking past EOF does not extend")
    os.write(fd, b"y")
    c.eq(os.fstat(fd).st_size, 1001, "a write after seeking past EOF extends")
    c.err(errno.EINVAL, os.lseek, fd, -1, os.SEEK_SET, what="SEEK_SET to a negative offset")
    c.err(errno.EINVAL, os.lseek, fd, -2000, os.SEEK_END, what="SEEK_END before the start")
    c.err(errno.EINVAL, os.lseek, fd, 0, 12345, what="an unknown whence")
    os.close(fd)
    c.err(errno.EBADF, os.lseek, fd, 0, os.SEEK_SET, what="lseek of a closed fd")
    # SEEK_DATA / SEEK_HOLE: a file system that does not track holes may
    # treat the whole file as data, which POSIX allows; the answers must
    # still be consistent.
    h = c.p("holes")
    fd = os.open(h, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(fd, b"d" * 4096, 1 << 20)
    os.fsync(fd)
    size = os.fstat(fd).st_size
    try:
        d = os.lseek(fd, 0, os.SEEK_DATA)
        hole = os.lseek(fd, 0, os.SEEK_HOLE)
        c.ok(d in (0, 1 << 20) or 0 <= d <= 1 << 20, f"SEEK_DATA from 0 finds data at 0 or at 1 MiB (got {d})")
        c.ok(hole in (0, size), f"SEEK_HOLE from 0 is the hole at 0 or EOF (got {hole})")
        c.eq(os.lseek(fd, 1 << 20, os.SEEK_DATA), 1 << 20, "SEEK_DATA at the data")
        c.eq(os.lseek(fd, 1 << 20, os.SEEK_HOLE), size, "SEEK_HOLE after the last data is EOF")
        c.err(errno.ENXIO, os.lseek, fd, size, os.SEEK_DATA, what="SEEK_DATA at EOF")
        c.err(errno.ENXIO, os.lseek, fd, size + 10, os.SEEK_HOLE, what="SEEK_HOLE past EOF")
    except OSError as e:
        c.ok(e.errno == errno.EINVAL, f"SEEK_DATA unsupported reports EINVAL (got {e.strerror})")
    os.close(fd)
    # A directory fd can be seeked back to 0 and read again.
    fd = os.open(c.dir, os.O_RDONLY | os.O_DIRECTORY)
    c.eq(os.lseek(fd, 0, os.SEEK_SET), 0, "lseek of a directory fd to 0")
    os.close(fd)


@case("truncate", "truncate/ftruncate: shrink, extend with zeros, times, errors")
def t_truncate(c):
    f = c.p("f")
    write_file(f, b"0123456789")
    st0 = os.stat(f)
    tick()
    c.must(os.truncate, f, 4, what="truncate to 4")
    st1 = os.stat(f)
    c.eq(st1.st_size, 4, "size after truncate to 4")
    c.eq(read_file(f), b"0123", "data after truncate to 4")
    c.ok(ns(st1, "st_mtime") > ns(st0, "st_mtime"), "truncate moves mtime")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "truncate moves ctime")
    c.must(os.truncate, f, 8192, what="truncate up to 8192")
    c.eq(os.stat(f).st_size, 8192, "size after extending")
    c.eq(read_file(f), b"0123" + bytes(8188), "extension reads as zeros")
    fd = os.open(f, os.O_RDWR)
    c.must(os.ftruncate, fd, 2, what="ftruncate to 2")
    c.eq(os.fstat(fd).st_size, 2, "size after ftruncate")
    c.eq(os.pread(fd, 10, 0), b"01", "data after ftruncate")
    c.eq(os.lseek(fd, 0, os.SEEK_CUR), 0, "ftruncate leaves the offset")
    c.must(os.ftruncate, fd, 0, what="ftruncate to 0")
    c.eq(os.fstat(fd).st_size, 0, "size after ftruncate to 0")
    c.must(os.ftruncate, fd, 5 << 30, what="ftruncate to 5 GiB")
    c.eq(os.fstat(fd).st_size, 5 << 30, "a sparse 5 GiB file")
    c.eq(os.pread(fd, 8, (5 << 30) - 8), bytes(8), "its last bytes are zeros")
    c.err(errno.EINVAL, os.ftruncate, fd, -1, what="ftruncate to a negative size")
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.err((errno.EINVAL, errno.EBADF), os.ftruncate, fd, 0, what="ftruncate of an O_RDONLY fd")
    os.close(fd)
    c.err(errno.EISDIR, os.truncate, c.dir, 0, what="truncate of a directory")
    c.err(errno.ENOENT, os.truncate, c.p("missing"), 0, what="truncate of a missing file")
    os.truncate(f, 0)
    st2 = os.stat(f)
    tick()
    os.truncate(f, 0)
    st3 = os.stat(f)
    c.eq(st3.st_size, 0, "truncate of an empty file to 0 keeps it empty")
    c.eq(st3.st_nlink, st2.st_nlink, "truncate leaves st_nlink")


@case("fsync", "fsync/fdatasync of files and directories, data durable and read back")
def t_fsync(c):
    f = c.p("f")
    fd = c.must(os.open, f, os.O_RDWR | os.O_CREAT, 0o644, what="create")
    data = os.urandom(256 * 1024)
    os.write(fd, data)
    c.must(os.fsync, fd, what="fsync after 256 KiB")
    c.must(os.fdatasync, fd, what="fdatasync")
    c.eq(os.fstat(fd).st_size, len(data), "size after fsync")
    drop_cache(fd)
    c.ok(os.pread(fd, len(data), 0) == data, "data read back after fsync and a cache drop")
    os.ftruncate(fd, 100)
    c.must(os.fsync, fd, what="fsync after ftruncate")
    c.eq(os.fstat(fd).st_size, 100, "size after ftruncate + fsync")
    os.close(fd)
    fd = os.open(f, os.O_RDONLY)
    c.must(os.fsync, fd, what="fsync of an O_RDONLY fd")
    os.close(fd)
    dfd = os.open(c.dir, os.O_RDONLY | os.O_DIRECTORY)
    c.must(os.fsync, dfd, what="fsync of a directory")
    os.close(dfd)
    fd = os.open(f, os.O_WRONLY | os.O_SYNC)
    c.eq(os.write(fd, b"sync"), 4, "an O_SYNC write")
    os.close(fd)
    c.eq(read_file(f)[:4], b"sync", "the O_SYNC write read back")
    fd = os.open(f, os.O_WRONLY | os.O_DSYNC)
    c.eq(os.pwrite(fd, b"dsync", 4), 5, "an O_DSYNC write")
    os.close(fd)
    c.eq(read_file(f)[:9], b"syncdsync", "the O_DSYNC write read back")
    c.err(errno.EBADF, os.fsync, fd, what="fsync of a closed fd")


@case("stat", "stat/fstat/lstat of files, dirs, symlinks; st_nlink, st_size, st_blocks, st_ino")
def t_stat(c):
    f = c.p("f")
    write_file(f, b"z" * 5000)
    st = c.must(os.stat, f, what="stat of a file")
    c.ok(stat.S_ISREG(st.st_mode), "a file is S_IFREG")
    c.eq(st.st_size, 5000, "st_size")
    c.eq(st.st_nlink, 1, "st_nlink of a file")
    c.ok(st.st_blocks * 512 >= 4096, f"st_blocks covers the data (got {st.st_blocks})")
    c.ok(st.st_blksize > 0, "st_blksize is positive")
    fd = os.open(f, os.O_RDONLY)
    fst = os.fstat(fd)
    os.close(fd)
    c.eq((fst.st_ino, fst.st_dev, fst.st_size), (st.st_ino, st.st_dev, st.st_size), "fstat agrees with stat")
    d = c.must(os.stat, c.dir, what="stat of a directory")
    c.ok(stat.S_ISDIR(d.st_mode), "a directory is S_IFDIR")
    c.eq(d.st_nlink, 2, "st_nlink of a directory without subdirectories")
    os.mkdir(c.p("sub"))
    c.eq(os.stat(c.dir).st_nlink, 3, "st_nlink of a directory counts a subdirectory's ..")
    os.symlink("f", c.p("l"))
    ls = c.must(os.lstat, c.p("l"), what="lstat of a symlink")
    c.ok(stat.S_ISLNK(ls.st_mode), "lstat of a symlink is S_IFLNK")
    c.eq(ls.st_size, 1, "st_size of a symlink is its target's length")
    c.eq(os.stat(c.p("l")).st_ino, st.st_ino, "stat follows a symlink")
    c.eq(os.lstat(f).st_ino, st.st_ino, "lstat of a regular file is the file")
    c.ok(ls.st_ino != st.st_ino, "a symlink has its own inode")
    c.err(errno.ENOENT, os.stat, c.p("missing"), what="stat of a missing name")
    c.err(errno.ENOTDIR, os.stat, c.p("f", "x"), what="stat through a regular file")
    os.symlink("missing", c.p("dangling"))
    c.err(errno.ENOENT, os.stat, c.p("dangling"), what="stat of a dangling symlink")
    c.ok(stat.S_ISLNK(os.lstat(c.p("dangling")).st_mode), "lstat of a dangling symlink")
    os.symlink("loop2", c.p("loop1"))
    os.symlink("loop1", c.p("loop2"))
    c.err(errno.ELOOP, os.stat, c.p("loop1"), what="stat of a symlink loop")
    names = set()
    for n in ("a", "b", "c"):
        write_file(c.p(n), b"")
        names.add(os.stat(c.p(n)).st_ino)
    c.eq(len(names), 3, "three files have three inode numbers")
    c.eq(os.stat(c.p("a")).st_dev, d.st_dev, "files share the directory's st_dev")
    c.eq(os.stat(c.p("a")).st_ino, os.stat(c.p("a")).st_ino, "st_ino is stable")


@case("chmod", "chmod/fchmod: mode bits, ctime moves, mtime stays, setuid/sticky bits")
def t_chmod(c):
    f = c.p("f")
    write_file(f, b"data", 0o644)
    for mode in (0o600, 0o755, 0o000, 0o4755, 0o2755, 0o1777, 0o640):
        st0 = os.stat(f)
        tick()
        c.must(os.chmod, f, mode, what=f"chmod {mode:o}")
        st1 = os.stat(f)
        c.eq(stat.S_IMODE(st1.st_mode), mode, f"mode after chmod {mode:o}")
        c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), f"chmod {mode:o} moves ctime")
        c.eq(st1.st_mtime_ns, st0.st_mtime_ns, f"chmod {mode:o} leaves mtime")
    fd = os.open(f, os.O_RDONLY)
    c.must(os.fchmod, fd, 0o604, what="fchmod 604")
    c.eq(stat.S_IMODE(os.fstat(fd).st_mode), 0o604, "mode after fchmod")
    os.close(fd)
    c.eq(stat.S_IMODE(os.stat(f).st_mode), 0o604, "fchmod seen by stat")
    os.mkdir(c.p("d"), 0o700)
    c.must(os.chmod, c.p("d"), 0o750, what="chmod of a directory")
    c.eq(stat.S_IMODE(os.stat(c.p("d")).st_mode), 0o750, "directory mode")
    c.ok(stat.S_ISDIR(os.stat(c.p("d")).st_mode), "chmod keeps the file type")
    os.symlink("f", c.p("l"))
    c.must(os.chmod, c.p("l"), 0o611, what="chmod through a symlink")
    c.eq(stat.S_IMODE(os.stat(f).st_mode), 0o611, "chmod through a symlink changes its target")
    c.err(errno.ENOENT, os.chmod, c.p("missing"), 0o644, what="chmod of a missing file")
    if os.geteuid() == 0:
        os.chmod(f, 0o000)
        c.eq(read_file(f), b"data", "root reads a mode 000 file")


@case("chown", "chown/fchown/lchown: owner and group, ctime, setuid cleared, -1 keeps")
def t_chown(c):
    f = c.p("f")
    write_file(f, b"data")
    uid, gid = os.geteuid(), os.getegid()
    root = uid == 0
    nu, ng = (1234, 5678) if root else (uid, gid)
    st0 = os.stat(f)
    tick()
    c.must(os.chown, f, nu, ng, what=f"chown {nu}:{ng}")
    st1 = os.stat(f)
    c.eq((st1.st_uid, st1.st_gid), (nu, ng), "owner and group after chown")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "chown moves ctime")
    c.eq(st1.st_mtime_ns, st0.st_mtime_ns, "chown leaves mtime")
    c.must(os.chown, f, -1, ng + (1 if root else 0), what="chown -1:gid")
    st2 = os.stat(f)
    c.eq(st2.st_uid, nu, "uid -1 keeps the owner")
    c.eq(st2.st_gid, ng + (1 if root else 0), "the group changed alone")
    c.must(os.chown, f, -1, -1, what="chown -1:-1")
    c.eq((os.stat(f).st_uid, os.stat(f).st_gid), (st2.st_uid, st2.st_gid), "-1:-1 changes nothing")
    fd = os.open(f, os.O_RDONLY)
    c.must(os.fchown, fd, uid, gid, what="fchown back")
    c.eq((os.fstat(fd).st_uid, os.fstat(fd).st_gid), (uid, gid), "owner after fchown")
    os.close(fd)
    os.symlink("f", c.p("l"))
    c.must(os.lchown, c.p("l"), nu, ng, what="lchown of a symlink")
    c.eq((os.lstat(c.p("l")).st_uid, os.lstat(c.p("l")).st_gid), (nu, ng), "lchown changes the symlink")
    c.eq(os.stat(f).st_uid, uid, "lchown leaves the target")
    os.chmod(f, 0o6755)
    c.must(os.chown, f, nu, ng, what="chown of a setuid file")
    c.eq(stat.S_IMODE(os.stat(f).st_mode) & 0o4000, 0, "chown clears the setuid bit")
    os.mkdir(c.p("d"))
    c.must(os.chown, c.p("d"), nu, ng, what="chown of a directory")
    c.eq(os.stat(c.p("d")).st_uid, nu, "directory owner")
    c.err(errno.ENOENT, os.chown, c.p("missing"), uid, gid, what="chown of a missing file")
    if root:
        # A file created by another uid belongs to that uid.
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(ng)
                os.setuid(nu)
                write_file(os.path.join(c.dir, "d", "byother"), b"")
                os._exit(0)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        c.eq(os.waitstatus_to_exitcode(status), 0, f"uid {nu} creates a file in its directory")
        st = os.stat(c.p("d", "byother"))
        c.eq((st.st_uid, st.st_gid), (nu, ng), "the new file belongs to its creator")


@case("utime", "utime/utimensat: explicit times, now, UTIME_OMIT, nanoseconds, symlinks")
def t_utime(c):
    f = c.p("f")
    write_file(f, b"data")
    st0 = os.stat(f)
    tick()
    c.must(os.utime, f, (1_000_000_000, 1_100_000_000), what="utime to explicit seconds")
    st1 = os.stat(f)
    c.eq(st1.st_atime_ns, 1_000_000_000 * 10**9, "atime set")
    c.eq(st1.st_mtime_ns, 1_100_000_000 * 10**9, "mtime set")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "utime moves ctime")
    c.must(os.utime, f, ns=(1_200_000_000_123_456_789, 1_300_000_000_987_654_321), what="utimensat with nanoseconds")
    st2 = os.stat(f)
    c.eq(st2.st_atime_ns, 1_200_000_000_123_456_789, "atime nanoseconds")
    c.eq(st2.st_mtime_ns, 1_300_000_000_987_654_321, "mtime nanoseconds")
    before = time.time_ns()
    c.must(os.utime, f, None, what="utime to now")
    st3 = os.stat(f)
    c.ok(abs(st3.st_mtime_ns - before) < 600 * 10**9, "utime(NULL) sets mtime to about now")
    c.ok(abs(st3.st_atime_ns - before) < 600 * 10**9, "utime(NULL) sets atime to about now")
    c.must(os.utime, f, ns=(5 * 10**18 // 1000, 7 * 10**15), what="utime far in the future")
    c.eq(os.stat(f).st_atime_ns, 5 * 10**15, "a far future atime")
    c.must(os.utime, f, (1_000, 2_000), what="utime to set both")
    c.must(utimensat, f, (0, UTIME_OMIT), (3_000, 5), what="utimensat with atime UTIME_OMIT")
    st = os.stat(f)
    c.eq(st.st_atime_ns, 1_000 * 10**9, "UTIME_OMIT leaves atime")
    c.eq(st.st_mtime_ns, 3_000 * 10**9 + 5, "mtime set beside UTIME_OMIT")
    now = time.time_ns()
    c.must(utimensat, f, (0, UTIME_NOW), (0, UTIME_OMIT), what="utimensat with atime UTIME_NOW, mtime UTIME_OMIT")
    st = os.stat(f)
    c.ok(abs(st.st_atime_ns - now) < 600 * 10**9, "UTIME_NOW sets atime to about now")
    c.eq(st.st_mtime_ns, 3_000 * 10**9 + 5, "UTIME_OMIT leaves mtime")
    c.must(os.utime, f, (0, 0), what="utime to the epoch")
    c.eq(os.stat(f).st_mtime_ns, 0, "mtime at the epoch")
    fd = os.open(f, os.O_RDONLY)
    c.must(os.utime, fd, (1_400_000_000, 1_500_000_000), what="futimens")
    c.eq(os.fstat(fd).st_mtime_ns, 1_500_000_000 * 10**9, "mtime after futimens")
    os.close(fd)
    os.symlink("f", c.p("l"))
    c.must(os.utime, c.p("l"), (1_600_000_000, 1_600_000_000), what="utime through a symlink")
    c.eq(os.stat(f).st_mtime_ns, 1_600_000_000 * 10**9, "utime follows a symlink")
    try:
        os.utime(c.p("l"), (1_650_000_000, 1_650_000_000), follow_symlinks=False)
        c.eq(os.lstat(c.p("l")).st_mtime_ns, 1_650_000_000 * 10**9, "utimensat AT_SYMLINK_NOFOLLOW sets the link")
        c.eq(os.stat(f).st_mtime_ns, 1_600_000_000 * 10**9, "AT_SYMLINK_NOFOLLOW leaves the target")
    except OSError as e:
        c.ok(False, f"utimensat AT_SYMLINK_NOFOLLOW: {e.strerror}")
    os.mkdir(c.p("d"))
    c.must(os.utime, c.p("d"), (1_700_000_000, 1_700_000_000), what="utime of a directory")
    c.eq(os.stat(c.p("d")).st_mtime_ns, 1_700_000_000 * 10**9, "directory mtime")
    c.err(errno.ENOENT, os.utime, c.p("missing"), None, what="utime of a missing file")


@case("access", "access for F_OK/R_OK/W_OK/X_OK by mode, for root and another uid")
def t_access(c):
    f = c.p("f")
    write_file(f, b"#!/bin/sh\n", 0o644)
    c.ok(os.access(f, os.F_OK), "F_OK of an existing file")
    c.ok(not os.access(c.p("missing"), os.F_OK), "F_OK of a missing file")
    c.ok(os.access(f, os.R_OK | os.W_OK), "R_OK|W_OK of a 0644 file by its owner")
    c.ok(not os.access(f, os.X_OK), "X_OK of a 0644 file")
    os.chmod(f, 0o755)
    c.ok(os.access(f, os.X_OK), "X_OK of a 0755 file")
    c.ok(os.access(c.dir, os.X_OK | os.W_OK), "X_OK|W_OK of its own directory")
    os.chmod(f, 0o000)
    if os.geteuid() == 0:
        c.ok(os.access(f, os.R_OK | os.W_OK), "root has R_OK|W_OK on a 000 file")
        c.ok(not os.access(f, os.X_OK), "root lacks X_OK on a 000 file")
        os.chmod(f, 0o604)
        os.chmod(c.dir, 0o755)
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(r)
            try:
                os.setgroups([])
                os.setgid(4321)
                os.setuid(4321)
                res = "".join("1" if os.access(f, m) else "0" for m in (os.R_OK, os.W_OK, os.X_OK, os.F_OK))
                res += "1" if os.access(c.dir, os.W_OK) else "0"
                os.write(w, res.encode())
                os._exit(0)
            except BaseException:
                os._exit(1)
        os.close(w)
        res = os.read(r, 16).decode()
        os.close(r)
        os.waitpid(pid, 0)
        c.eq(res, "10010", "another uid: R_OK yes, W_OK no, X_OK no, F_OK yes on 0604; no W_OK on 0755 dir")
    else:
        c.ok(not os.access(f, os.R_OK), "no R_OK on a 000 file")
    os.symlink("missing", c.p("dangling"))
    c.ok(not os.access(c.p("dangling"), os.F_OK), "access follows a dangling symlink to nothing")


@case("mkdir", "mkdir: mode, st_nlink of parent and child, EEXIST, ENOENT, ENOTDIR, times")
def t_mkdir(c):
    d = c.p("d")
    p0 = os.stat(c.dir)
    tick()
    c.must(os.mkdir, d, 0o750, what="mkdir")
    st = os.stat(d)
    c.ok(stat.S_ISDIR(st.st_mode), "the new entry is a directory")
    c.eq(stat.S_IMODE(st.st_mode), 0o750 & ~UMASK, "mode of the new directory")
    c.eq(st.st_nlink, 2, "st_nlink of a new directory")
    c.eq(os.listdir(d), [], "a new directory is empty")
    p1 = os.stat(c.dir)
    c.eq(p1.st_nlink, p0.st_nlink + 1, "mkdir adds one link to the parent")
    c.ok(ns(p1, "st_mtime") > ns(p0, "st_mtime"), "mkdir moves the parent's mtime")
    c.ok(ns(p1, "st_ctime") > ns(p0, "st_ctime"), "mkdir moves the parent's ctime")
    c.err(errno.EEXIST, os.mkdir, d, what="mkdir of an existing directory")
    write_file(c.p("f"), b"")
    c.err(errno.EEXIST, os.mkdir, c.p("f"), what="mkdir over a file")
    c.err(errno.ENOENT, os.mkdir, c.p("no", "d"), what="mkdir in a missing directory")
    c.err(errno.ENOTDIR, os.mkdir, c.p("f", "d"), what="mkdir below a file")
    os.symlink("d", c.p("l"))
    c.err(errno.EEXIST, os.mkdir, c.p("l"), what="mkdir over a symlink")
    path = d
    for i in range(20):
        path = os.path.join(path, f"n{i}")
        os.mkdir(path)
    c.ok(os.path.isdir(path), "20 nested directories")
    c.eq(os.stat(d).st_nlink, 3, "st_nlink after one subdirectory")
    for i in range(10):
        os.mkdir(os.path.join(d, f"s{i}"))
    c.eq(os.stat(d).st_nlink, 13, "st_nlink after 11 subdirectories")
    c.eq(os.stat(os.path.join(d, "s0", "..")).st_ino, os.stat(d).st_ino, "a subdirectory's .. is its parent")
    if os.geteuid() == 0:
        os.chmod(d, 0o2775)
        os.chown(d, -1, 777)
        os.mkdir(os.path.join(d, "sg"))
        st = os.stat(os.path.join(d, "sg"))
        c.eq(st.st_gid, 777, "a directory made in a setgid directory takes its group")
        c.ok(st.st_mode & stat.S_ISGID, "and inherits the setgid bit")


@case("rmdir", "rmdir: empty only, st_nlink of the parent, ENOTEMPTY, ENOTDIR, EINVAL")
def t_rmdir(c):
    d = c.p("d")
    os.mkdir(d)
    p0 = os.stat(c.dir)
    tick()
    c.must(os.rmdir, d, what="rmdir of an empty directory")
    c.ok(not os.path.exists(d), "the directory is gone")
    p1 = os.stat(c.dir)
    c.eq(p1.st_nlink, p0.st_nlink - 1, "rmdir drops one link of the parent")
    c.ok(ns(p1, "st_mtime") > ns(p0, "st_mtime"), "rmdir moves the parent's mtime")
    os.mkdir(d)
    write_file(os.path.join(d, "f"), b"")
    c.err((errno.ENOTEMPTY, errno.EEXIST), os.rmdir, d, what="rmdir of a non-empty directory")
    c.ok(os.path.exists(os.path.join(d, "f")), "a refused rmdir loses nothing")
    os.unlink(os.path.join(d, "f"))
    os.mkdir(os.path.join(d, "sub"))
    c.err((errno.ENOTEMPTY, errno.EEXIST), os.rmdir, d, what="rmdir of a directory with a subdirectory")
    os.rmdir(os.path.join(d, "sub"))
    c.eq(os.stat(d).st_nlink, 2, "st_nlink after removing the subdirectory")
    write_file(c.p("f"), b"")
    c.err(errno.ENOTDIR, os.rmdir, c.p("f"), what="rmdir of a file")
    c.err(errno.ENOENT, os.rmdir, c.p("missing"), what="rmdir of a missing name")
    c.err(errno.EINVAL, os.rmdir, os.path.join(d, "."), what="rmdir of .")
    os.symlink("d", c.p("l"))
    c.err(errno.ENOTDIR, os.rmdir, c.p("l"), what="rmdir of a symlink to a directory")
    c.ok(os.path.isdir(d), "the symlink's target survives")
    # rmdir of a directory that is another process's cwd.
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    c.must(os.rmdir, d, what="rmdir of a directory held open")
    try:
        nfd = os.open("x", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.close(nfd)
        c.ok(False, "create in a removed directory fails")
    except OSError as e:
        c.ok(e.errno in (errno.ENOENT, errno.ESTALE), f"create in a removed directory fails (got {e.strerror})")
    os.close(fd)
    c.eq(sorted(os.listdir(c.dir)), ["f", "l"], "entries left")


@case("unlink", "unlink: the name goes, open fds keep the data, st_nlink/ctime of other links")
def t_unlink(c):
    f = c.p("f")
    write_file(f, b"keep me")
    p0 = os.stat(c.dir)
    tick()
    c.must(os.unlink, f, what="unlink of a file")
    c.ok(not os.path.lexists(f), "the name is gone")
    p1 = os.stat(c.dir)
    c.ok(ns(p1, "st_mtime") > ns(p0, "st_mtime"), "unlink moves the directory's mtime")
    c.ok(ns(p1, "st_ctime") > ns(p0, "st_ctime"), "unlink moves the directory's ctime")
    c.err(errno.ENOENT, os.unlink, f, what="unlink of a missing name")
    write_file(f, b"open data")
    fd = os.open(f, os.O_RDWR)
    os.unlink(f)
    c.eq(os.pread(fd, 100, 0), b"open data", "an open fd reads an unlinked file")
    os.pwrite(fd, b"more", 9)
    c.eq(os.pread(fd, 100, 0), b"open datamore", "an open fd writes an unlinked file")
    # An NFS client keeps an open file it unlinks under a temporary name
    # (".nfs...", the silly rename) until the last close: st_nlink stays 1.
    silly = [n for n in os.listdir(c.dir) if n.startswith(".nfs")]
    nlink = os.fstat(fd).st_nlink
    c.ok(nlink == 0 or (nlink == 1 and len(silly) == 1),
         f"st_nlink of an open unlinked file is 0 (or 1 under the client's .nfs name): {nlink}, {silly}")
    os.close(fd)
    c.eq([n for n in os.listdir(c.dir) if not n.startswith(".nfs")], [],
         "the directory is empty after unlinks (client temp names aside)")
    write_file(f, b"x")
    os.link(f, c.p("g"))
    st0 = os.stat(c.p("g"))
    tick()
    os.unlink(f)
    st1 = os.stat(c.p("g"))
    c.eq(st1.st_nlink, 1, "unlink of one of two links drops st_nlink to 1")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "unlink moves the surviving link's ctime")
    c.eq(st1.st_mtime_ns, st0.st_mtime_ns, "unlink leaves the surviving link's mtime")
    os.mkdir(c.p("d"))
    c.err((errno.EISDIR, errno.EPERM), os.unlink, c.p("d"), what="unlink of a directory")
    os.symlink("g", c.p("l"))
    c.must(os.unlink, c.p("l"), what="unlink of a symlink")
    c.ok(os.path.exists(c.p("g")), "unlink of a symlink leaves its target")
    c.err(errno.ENOTDIR, os.unlink, c.p("g", "x"), what="unlink below a file")
    if os.geteuid() == 0:
        os.chmod(c.p("d"), 0o1777)
        write_file(c.p("d", "rootfile"), b"")
        pid = os.fork()
        if pid == 0:
            try:
                os.setgroups([])
                os.setgid(4321)
                os.setuid(4321)
                os.unlink(os.path.join(c.dir, "d", "rootfile"))
                os._exit(0)
            except OSError as e:
                os._exit(3 if e.errno in (errno.EPERM, errno.EACCES) else 1)
        _, status = os.waitpid(pid, 0)
        c.eq(os.waitstatus_to_exitcode(status), 3, "the sticky bit stops another uid's unlink")


@case("rename", "rename over files, empty and non-empty dirs, across dirs, errors, st_nlink, ctime")
def t_rename(c):
    a, b = c.p("a"), c.p("b")
    write_file(a, b"A")
    ino = os.stat(a).st_ino
    st0 = os.stat(a)
    tick()
    c.must(os.rename, a, b, what="rename to a new name")
    c.ok(not os.path.lexists(a), "the old name is gone")
    c.eq(os.stat(b).st_ino, ino, "the new name is the same inode")
    c.eq(read_file(b), b"A", "data under the new name")
    c.ok(ns(os.stat(b), "st_ctime") >= ns(st0, "st_ctime"), "rename does not move ctime backwards")
    write_file(a, b"AA")
    ino_a = os.stat(a).st_ino
    c.must(os.rename, a, b, what="rename over an existing file")
    c.eq(os.stat(b).st_ino, ino_a, "the target now is the renamed file")
    c.eq(read_file(b), b"AA", "data after rename over a file")
    c.eq(sorted(os.listdir(c.dir)), ["b"], "one name left")
    os.link(b, c.p("b2"))
    c.must(os.rename, b, c.p("b2"), what="rename onto another link of the same file")
    c.ok(os.path.exists(b) and os.path.exists(c.p("b2")), "renaming onto the same inode changes nothing")
    c.eq(os.stat(b).st_nlink, 2, "st_nlink unchanged by a no-op rename")
    os.unlink(c.p("b2"))
    # Directories.
    os.mkdir(c.p("d1"))
    os.mkdir(c.p("d2"))
    write_file(c.p("d1", "f"), b"in d1")
    p0 = os.stat(c.dir)
    c.must(os.rename, c.p("d1"), c.p("d2"), what="rename of a directory over an empty directory")
    c.eq(os.listdir(c.p("d2")), ["f"], "the moved directory's contents")
    c.ok(not os.path.exists(c.p("d1")), "the old directory name is gone")
    c.eq(os.stat(c.dir).st_nlink, p0.st_nlink - 1, "the replaced directory's link is gone from the parent")
    os.mkdir(c.p("d3"))
    write_file(c.p("d3", "g"), b"")
    c.err((errno.ENOTEMPTY, errno.EEXIST), os.rename, c.p("d3"), c.p("d2"),
          what="rename of a directory over a non-empty directory")
    c.ok(os.path.exists(c.p("d2", "f")) and os.path.exists(c.p("d3", "g")), "a refused rename loses nothing")
    c.err(errno.ENOTDIR, os.rename, c.p("d3"), b, what="rename of a directory over a file")
    c.err(errno.EISDIR, os.rename, b, c.p("d3"), what="rename of a file over a directory")
    c.err(errno.EINVAL, os.rename, c.p("d3"), c.p("d3", "inside"), what="rename of a directory into itself")
    c.err(errno.ENOENT, os.rename, c.p("missing"), c.p("x"), what="rename of a missing name")
    c.err(errno.ENOENT, os.rename, b, c.p("nodir", "x"), what="rename into a missing directory")
    # Across directories: st_nlink of both parents, .. of the moved dir.
    n2, n3 = os.stat(c.p("d2")).st_nlink, os.stat(c.p("d3")).st_nlink
    os.mkdir(c.p("d2", "sub"))
    c.must(os.rename, c.p("d2", "sub"), c.p("d3", "sub"), what="rename of a directory across directories")
    c.eq(os.stat(c.p("d2")).st_nlink, n2, "the source parent's st_nlink is back")
    c.eq(os.stat(c.p("d3")).st_nlink, n3 + 1, "the target parent's st_nlink grew")
    c.eq(os.stat(c.p("d3", "sub", "..")).st_ino, os.stat(c.p("d3")).st_ino, "the moved directory's .. is its new parent")
    d0 = os.stat(c.p("d2"))
    tick()
    c.must(os.rename, b, c.p("d2", "moved"), what="rename of a file across directories")
    c.eq(read_file(c.p("d2", "moved")), b"AA", "data after a move across directories")
    c.ok(ns(os.stat(c.p("d2")), "st_mtime") > ns(d0, "st_mtime"), "a move in moves the target dir's mtime")
    os.symlink("d2", c.p("l"))
    c.must(os.rename, c.p("l"), c.p("l2"), what="rename of a symlink")
    c.eq(os.readlink(c.p("l2")), "d2", "a renamed symlink keeps its target")
    c.ok(os.path.isdir(c.p("d2")), "renaming a symlink leaves its target")
    write_file(c.p("x"), b"")
    c.must(os.rename, c.p("x"), c.p("x"), what="rename of a name to itself")
    c.ok(os.path.exists(c.p("x")), "rename to itself keeps the file")
    # An open fd follows the file through a rename.
    fd = os.open(c.p("x"), os.O_RDWR)
    os.rename(c.p("x"), c.p("y"))
    os.write(fd, b"after")
    os.close(fd)
    c.eq(read_file(c.p("y")), b"after", "an open fd writes the renamed file")
    # Many renames in a row keep a consistent directory.
    for i in range(50):
        write_file(c.p(f"m{i}"), str(i).encode())
    for i in range(50):
        os.rename(c.p(f"m{i}"), c.p(f"n{i}"))
    ok = all(read_file(c.p(f"n{i}")) == str(i).encode() for i in range(50))
    c.ok(ok and not any(os.path.exists(c.p(f"m{i}")) for i in range(50)), "50 renames land")


@case("link", "link: st_nlink, shared data and inode, ctime, EEXIST, EPERM on dirs, unlink order")
def t_link(c):
    f = c.p("f")
    write_file(f, b"linked")
    st0 = os.stat(f)
    tick()
    c.must(os.link, f, c.p("g"), what="link")
    st1 = os.stat(f)
    c.eq(st1.st_nlink, 2, "st_nlink after link")
    c.ok(ns(st1, "st_ctime") > ns(st0, "st_ctime"), "link moves the file's ctime")
    c.eq(st1.st_mtime_ns, st0.st_mtime_ns, "link leaves the file's mtime")
    c.eq(os.stat(c.p("g")).st_ino, st1.st_ino, "both names are one inode")
    write_file(c.p("g"), b"changed through g")
    c.eq(read_file(f), b"changed through g", "a write through one name is seen through the other")
    os.mkdir(c.p("d"))
    c.must(os.link, f, c.p("d", "h"), what="link into another directory")
    c.eq(os.stat(f).st_nlink, 3, "st_nlink with three names")
    c.err(errno.EEXIST, os.link, f, c.p("g"), what="link over an existing name")
    c.err(errno.ENOENT, os.link, c.p("missing"), c.p("x"), what="link of a missing file")
    c.err(errno.EPERM, os.link, c.p("d"), c.p("dl"), what="link of a directory")
    os.symlink("f", c.p("s"))
    c.must(os.link, c.p("s"), c.p("s2"), follow_symlinks=False, what="link of a symlink itself")
    c.ok(stat.S_ISLNK(os.lstat(c.p("s2")).st_mode), "a hard link of a symlink is a symlink")
    c.eq(os.lstat(c.p("s")).st_nlink, 2, "the symlink has two links")
    os.unlink(f)
    c.eq(os.stat(c.p("g")).st_nlink, 2, "st_nlink after unlinking the first name")
    c.eq(read_file(c.p("d", "h")), b"changed through g", "data survives through the other names")
    os.unlink(c.p("g"))
    c.eq(os.stat(c.p("d", "h")).st_nlink, 1, "one name left")
    for i in range(100):
        os.link(c.p("d", "h"), c.p("d", f"l{i}"))
    c.eq(os.stat(c.p("d", "h")).st_nlink, 101, "st_nlink with 101 names")
    for i in range(100):
        os.unlink(c.p("d", f"l{i}"))
    c.eq(os.stat(c.p("d", "h")).st_nlink, 1, "st_nlink back to 1")


@case("symlink", "symlink/readlink: targets kept verbatim, relative/absolute/dangling, lstat, ELOOP")
def t_symlink(c):
    p0 = os.stat(c.dir)
    tick()
    c.must(os.symlink, "target", c.p("l"), what="symlink")
    c.eq(os.readlink(c.p("l")), "target", "readlink of a dangling symlink")
    st = os.lstat(c.p("l"))
    c.ok(stat.S_ISLNK(st.st_mode), "lstat of the symlink")
    c.eq(st.st_size, 6, "st_size of a symlink")
    c.eq(st.st_nlink, 1, "st_nlink of a symlink")
    c.ok(ns(os.stat(c.dir), "st_mtime") > ns(p0, "st_mtime"), "symlink moves the directory's mtime")
    long_target = "x/" * 500 + "end"
    c.must(os.symlink, long_target, c.p("long"), what="symlink with a 1003-byte target")
    c.eq(os.readlink(c.p("long")), long_target, "a long target read back")
    odd = "../ odd name/with\ttab/ünïcode/.."
    c.must(os.symlink, odd, c.p("odd"), what="symlink with spaces, tab and UTF-8")
    c.eq(os.readlink(c.p("odd")), odd, "odd target kept verbatim")
    c.must(os.symlink, "/etc/hostname", c.p("abs"), what="absolute symlink")
    c.eq(os.readlink(c.p("abs")), "/etc/hostname", "absolute target kept")
    write_file(c.p("target"), b"through the link")
    c.eq(read_file(c.p("l")), b"through the link", "a read follows the symlink")
    os.mkdir(c.p("d"))
    os.symlink("../target", c.p("d", "up"))
    c.eq(read_file(c.p("d", "up")), b"through the link", "a relative target resolves from the link's dir")
    c.err(errno.EEXIST, os.symlink, "x", c.p("l"), what="symlink over an existing name")
    c.err(errno.EINVAL, os.readlink, c.p("target"), what="readlink of a regular file")
    c.err(errno.ENOENT, os.readlink, c.p("missing"), what="readlink of a missing name")
    os.symlink("d", c.p("dl"))
    c.eq(os.listdir(c.p("dl")), ["up"], "a symlink to a directory lists it")
    c.ok(os.path.isdir(c.p("dl")) and os.path.islink(c.p("dl")), "islink and isdir")
    os.symlink("self", c.p("self"))
    c.err(errno.ELOOP, os.stat, c.p("self"), what="stat of a self-referencing symlink")
    c.err(errno.ENOENT, os.symlink, "x", c.p("nodir", "l"), what="symlink in a missing directory")


READDIR_ENTRIES = 400
LONG = "x" * 150


@case("readdir", "readdir: . and .., 400 entries of 161-byte names, deletes and adds while reading")
def t_readdir(c):
    d = c.p("big")
    os.mkdir(d)
    # 400 names of 161 bytes: about 70 KiB of entries, more than one
    # READDIR(PLUS) reply (a Linux client starts at a page and grows).
    n = READDIR_ENTRIES
    for i in range(n):
        fd = os.open(os.path.join(d, f"file-{i:05d}-" + LONG), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.close(fd)
    names = os.listdir(d)
    c.eq(len(names), n, f"listdir of {n} files")
    c.eq(len(set(names)), n, "no name is listed twice")
    c.eq(sorted(names)[0], "file-00000-" + LONG, "the first name")
    c.eq(os.stat(d).st_nlink, 2, "files do not add to st_nlink")
    with os.scandir(d) as it:
        kinds = {e.name: e.is_file(follow_symlinks=False) for e in it}
    c.ok(all(kinds.values()) and len(kinds) == n, "scandir's d_type says file for every entry")
    # Deleting while reading: every entry that is not removed before it is
    # reached is returned exactly once; no entry is returned twice.
    seen = []
    removed = set()
    with os.scandir(d) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i % 2 == 0:
                victim = os.path.join(d, e.name)
                os.unlink(victim)
                removed.add(e.name)
    c.eq(len(seen), len(set(seen)), "no duplicates while deleting during readdir")
    c.eq(len(seen), n, "every entry reached while deleting what was read")
    left = set(os.listdir(d))
    c.eq(left, set(seen) - removed, "what is left is what was not deleted")
    # Delete ahead of the reader: entries removed before being reached are
    # not returned, the others are, once.
    rest = sorted(left)
    with os.scandir(d) as it:
        first = next(it).name
        for name in rest:
            if name != first:
                os.unlink(os.path.join(d, name))
        after = [e.name for e in it]
    c.ok(len(after) <= len(rest) - 1, f"entries deleted ahead of the reader are not all returned ({len(after)})")
    c.eq(os.listdir(d), [first], "one entry left")
    # Adds while reading never duplicate an old entry.
    for i in range(100):
        write_file(os.path.join(d, f"a{i}"), b"")
    seen = []
    with os.scandir(d) as it:
        for i, e in enumerate(it):
            seen.append(e.name)
            if i < 50:
                write_file(os.path.join(d, f"new{i}"), b"")
    c.eq(len(seen), len(set(seen)), "no duplicates while adding during readdir")
    c.ok({f"a{i}" for i in range(100)} <= set(seen), "every old entry returned while adding")
    # . and .. through the raw interface, and a 255-byte name.
    long = "L" * 255
    write_file(os.path.join(d, long), b"")
    c.ok(long in os.listdir(d), "a 255-byte name is listed")
    c.err(errno.ENAMETOOLONG, os.open, os.path.join(d, "L" * 256), os.O_WRONLY | os.O_CREAT, 0o644,
          what="a 256-byte name")
    fd = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    os.close(fd)
    c.ok(os.path.samefile(os.path.join(d, "."), d) and os.path.samefile(os.path.join(d, ".."), c.dir),
         ". and .. resolve")
    e = c.p("empty")
    os.mkdir(e)
    c.eq(os.listdir(e), [], "an empty directory lists nothing")
    for name in os.listdir(d):
        os.unlink(os.path.join(d, name))
    c.eq([x for x in os.listdir(d) if not x.startswith(".nfs")], [], "empty after removing everything")
    c.must(os.rmdir, d, what="rmdir of the emptied big directory")


@case("mknod", "mkfifo/mknod of a fifo: type, mode, st_size 0, open/read/write through it")
def t_mknod(c):
    f = c.p("fifo")
    c.must(os.mkfifo, f, 0o640, what="mkfifo")
    st = os.lstat(f)
    c.ok(stat.S_ISFIFO(st.st_mode), "the node is a fifo")
    c.eq(stat.S_IMODE(st.st_mode), 0o640 & ~UMASK, "fifo mode")
    c.eq(st.st_size, 0, "fifo size")
    c.eq(st.st_nlink, 1, "fifo st_nlink")
    c.must(os.mknod, c.p("fifo2"), 0o600 | stat.S_IFIFO, what="mknod S_IFIFO")
    c.ok(stat.S_ISFIFO(os.lstat(c.p("fifo2")).st_mode), "mknod made a fifo")
    c.err(errno.EEXIST, os.mkfifo, f, what="mkfifo over an existing name")
    r = os.open(f, os.O_RDONLY | os.O_NONBLOCK)
    w = os.open(f, os.O_WRONLY | os.O_NONBLOCK)
    os.write(w, b"through the fifo")
    c.eq(os.read(r, 100), b"through the fifo", "data through the fifo (local pipe)")
    os.close(w)
    os.close(r)
    c.eq(os.lstat(f).st_size, 0, "a fifo stays empty on the file system")
    c.err(errno.ENXIO, os.open, f, os.O_WRONLY | os.O_NONBLOCK, what="O_WRONLY|O_NONBLOCK with no reader")
    os.chmod(f, 0o600)
    c.eq(stat.S_IMODE(os.lstat(f).st_mode), 0o600, "chmod of a fifo")
    os.rename(f, c.p("fifo3"))
    c.ok(stat.S_ISFIFO(os.lstat(c.p("fifo3")).st_mode), "a renamed fifo is still a fifo")
    os.link(c.p("fifo3"), c.p("fifo4"))
    c.eq(os.lstat(c.p("fifo3")).st_nlink, 2, "a hard link of a fifo")
    c.must(os.unlink, c.p("fifo3"), what="unlink of a fifo")
    c.must(os.unlink, c.p("fifo4"), what="unlink of the fifo's other link")
    c.must(os.unlink, c.p("fifo2"), what="unlink of the mknod fifo")
    c.eq(os.listdir(c.dir), [], "all fifos gone")


@case("statvfs", "statvfs/fstatvfs: sizes consistent, a 16 MiB file's blocks within the totals")
def t_statvfs(c):
    sv = c.must(os.statvfs, c.dir, what="statvfs")
    c.ok(sv.f_bsize > 0 and sv.f_frsize > 0, "block sizes are positive")
    c.ok(sv.f_blocks > 0, "f_blocks is positive")
    c.ok(sv.f_bfree <= sv.f_blocks, "f_bfree <= f_blocks")
    c.ok(sv.f_bavail <= sv.f_bfree, "f_bavail <= f_bfree")
    c.ok(sv.f_ffree <= sv.f_files or sv.f_files == 0, "f_ffree <= f_files")
    c.ok(sv.f_namemax >= 255, f"f_namemax >= 255 (got {sv.f_namemax})")
    fd = os.open(c.p("f"), os.O_WRONLY | os.O_CREAT, 0o644)
    fsv = c.must(os.fstatvfs, fd, what="fstatvfs")
    c.eq((fsv.f_frsize, fsv.f_blocks), (sv.f_frsize, sv.f_blocks), "fstatvfs agrees with statvfs")
    # The free space itself is not compared before and after: the file
    # system may be shared with writers the runner does not know of.
    chunk = os.urandom(1 << 20)
    for _ in range(16):
        os.write(fd, chunk)
    os.fsync(fd)
    st = os.fstat(fd)
    os.close(fd)
    c.ok(st.st_blocks * 512 >= 16 << 20, f"the 16 MiB file has its blocks ({st.st_blocks})")
    total = sv.f_blocks * sv.f_frsize
    c.ok(st.st_blocks * 512 <= total, "its blocks fit in the file system's size")
    after = os.statvfs(c.dir)
    c.eq(after.f_blocks * after.f_frsize, total, "f_blocks is unchanged by a write")
    os.unlink(c.p("f"))
    c.ok(not os.path.exists(c.p("f")), "unlinked")
    c.err(errno.ENOENT, os.statvfs, c.p("missing"), what="statvfs of a missing path")


UMASK = 0o022


def parse_cases(args):
    names = []
    for a in args:
        names += [n.strip() for n in a.split(",") if n.strip()]
    if not names or names == ["all"]:
        return list(CASES)
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise ValueError(f"unknown case(s): {', '.join(unknown)} (see --list)")
    return names


def run_cases(root, names, verbose):
    passed = failed = 0
    work = os.path.join(root, f"posix-runner.{os.getpid()}")
    try:
        os.mkdir(work)
        os.chmod(work, 0o755)
    except OSError as e:
        print(f"posix-runner: cannot make the work dir '{work}': {e.strerror}", flush=True)
        for n in names:
            print(f"FAIL {n} (no work dir)", flush=True)
        return 0, len(names)
    for n in names:
        fn, _ = CASES[n]
        t0 = time.monotonic()
        try:
            c = Ctx(work, n, verbose)
        except OSError as e:
            print(f"FAIL {n} (setup: cannot make '{os.path.join(work, n)}': {e.strerror})", flush=True)
            failed += 1
            continue
        err = None
        try:
            fn(c)
        except Failed:
            pass
        except OSError as e:
            err = f"{e.strerror} ({errno.errorcode.get(e.errno, e.errno)}){' on ' + repr(e.filename) if e.filename else ''}"
        except Exception as e:  # an unexpected error is that case's failure
            err = f"{type(e).__name__}: {e}"
        if err:
            c.failures.append(err)
            print(f"  FAIL {n}: unexpected error after {c.n} assertions: {err}", flush=True)
        dt = time.monotonic() - t0
        if c.failures:
            failed += 1
            print(f"FAIL {n} ({len(c.failures)} of {c.n} assertions failed, {dt:.2f}s)", flush=True)
        else:
            passed += 1
            print(f"PASS {n} ({c.n} assertions, {dt:.2f}s)", flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return passed, failed


def wait_port(host, port, timeout):
    """Waits until host:port accepts a TCP connection; returns None or why not."""
    deadline = time.monotonic() + timeout
    why = "timed out"
    while True:
        try:
            with socket.create_connection((host, port), timeout=2):
                return None
        except OSError as e:
            why = e.strerror or str(e)
        if time.monotonic() >= deadline:
            return why
        time.sleep(0.2)


def run_suite(suite, args, names):
    """Runs an nfstest checkout's nfstest_posix; its exit status maps to ours."""
    prog = os.path.join(suite, "test", "nfstest_posix")
    if not os.path.isfile(prog):
        print(f"posix-runner: '{prog}' is missing: --suite wants an nfstest checkout", flush=True)
        return 1
    cmd = [sys.executable, prog, "--server", args.server, "--export", args.export,
           "--mtpoint", args.mountpoint, "--port", str(args.port), "--nfsversion", "3",
           "--mtopts", f"mountport={args.port},nolock"]
    if names:
        cmd += ["--runtest", ",".join(names)]
    env = dict(os.environ, PYTHONPATH=suite + os.pathsep + os.environ.get("PYTHONPATH", ""))
    print("posix-runner: " + " ".join(cmd), flush=True)
    rc = subprocess.call(cmd, env=env)
    print(f"posix-runner: nfstest_posix exited {rc}", flush=True)
    return 0 if rc == 0 else 1


def main():
    ap = argparse.ArgumentParser(
        prog="posix-runner",
        description="POSIX file system conformance cases, in a directory or on an NFSv3 mount.",
        epilog="Exit status: 0 all cases passed, 1 some failed (or the server or the mount failed), 2 usage.")
    ap.add_argument("cases", nargs="*", help="case names, comma-separated; default or 'all': every case")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--dir", help="run in this existing directory (no mount)")
    ap.add_argument("--server", help="NFS server address (mount mode)")
    ap.add_argument("--port", type=int, help="the server's NFS and MOUNT port")
    ap.add_argument("--export", help="the export path to mount")
    ap.add_argument("--mountpoint", help="where to mount (made if missing)")
    ap.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the server port (default 10)")
    ap.add_argument("--suite", help="run this nfstest checkout's nfstest_posix instead of our cases")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every assertion")
    try:
        args = ap.parse_args()
    except SystemExit as e:
        return 0 if e.code == 0 else 2

    if args.list:
        for n, (_, doc) in CASES.items():
            print(f"{n:10} {doc}")
        return 0
    try:
        names = parse_cases(args.cases)
    except ValueError as e:
        print(f"posix-runner: {e}", file=sys.stderr)
        return 2
    if bool(args.dir) == bool(args.server):
        print("posix-runner: give exactly one of --dir DIR and --server HOST", file=sys.stderr)
        return 2
    os.umask(UMASK)

    if args.dir:
        if args.suite:
            print("posix-runner: --suite needs --server", file=sys.stderr)
            return 2
        if not os.path.isdir(args.dir):
            print(f"posix-runner: '{args.dir}' is not a directory", file=sys.stderr)
            return 2
        passed, failed = run_cases(args.dir, names, args.verbose)
        print(f"{passed} passed, {failed} failed", flush=True)
        return 0 if failed == 0 else 1

    missing = [o for o in ("port", "export", "mountpoint") if getattr(args, o) is None]
    if missing:
        print(f"posix-runner: --server needs {', '.join('--' + m for m in missing)}", file=sys.stderr)
        return 2
    if not 0 < args.port < 65536:
        print(f"posix-runner: bad port {args.port}", file=sys.stderr)
        return 2
    print(f"posix-runner: waiting up to {args.wait:g}s for {args.server}:{args.port}", flush=True)
    why = wait_port(args.server, args.port, args.wait)
    if why:
        print(f"posix-runner: the NFS server {args.server}:{args.port} is not reachable: {why}", flush=True)
        print(f"0 passed, {len(names)} failed", flush=True)
        return 1
    if args.suite:
        return run_suite(args.suite, args, names if args.cases else [])

    os.makedirs(args.mountpoint, exist_ok=True)
    opts = f"vers=3,proto=tcp,port={args.port},mountport={args.port},nolock"
    src = f"{args.server}:{args.export}"
    print(f"posix-runner: mount -t nfs -o {opts} {src} {args.mountpoint}", flush=True)
    r = subprocess.run(["mount", "-t", "nfs", "-o", opts, src, args.mountpoint],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    if r.returncode != 0:
        print(f"posix-runner: cannot mount {src} on '{args.mountpoint}': {r.stdout.strip()}", flush=True)
        print(f"0 passed, {len(names)} failed", flush=True)
        return 1
    try:
        passed, failed = run_cases(args.mountpoint, names, args.verbose)
    finally:
        u = subprocess.run(["umount", args.mountpoint], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if u.returncode != 0:
            print(f"posix-runner: cannot unmount '{args.mountpoint}': {u.stdout.strip()}", flush=True)
    print(f"{passed} passed, {failed} failed", flush=True)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
