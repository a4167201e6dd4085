"""Thin libc wrappers for the Linux calls Python 3.11's ``os`` lacks.

Built on ``_ctypes`` directly: the ``ctypes`` package costs ~5 ms of start-up on every
``bkpy-runc run`` and only a handful of C types are needed here. Every wrapper raises
OSError with the C errno on failure so callers can name the step.
"""

from __future__ import annotations

import _ctypes
import os


class _Int(_ctypes._SimpleCData):
    _type_ = "i"


class _ULong(_ctypes._SimpleCData):
    _type_ = "L"


class _CharP(_ctypes._SimpleCData):
    _type_ = "z"


class _UInt32(_ctypes._SimpleCData):
    _type_ = "I"


class _Char(_ctypes._SimpleCData):
    _type_ = "c"


class _Func(_ctypes.CFuncPtr):
    _flags_ = _ctypes.FUNCFLAG_CDECL | _ctypes.FUNCFLAG_USE_ERRNO
    _restype_ = _Int


class _Libc:
    _handle = _ctypes.dlopen(None, os.RTLD_NOW)  # type: ignore[arg-type]  # libc, loaded


_libc = _Libc()


def _fn(name: str, *argtypes: type) -> _Func:
    func = _Func((name, _libc))  # type: ignore[arg-type]
    func.argtypes = argtypes
    return func


CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_SYNCHRONOUS = 16
MS_REMOUNT = 32
MS_MANDLOCK = 64
MS_DIRSYNC = 128
MS_NOSYMFOLLOW = 256
MS_NOATIME = 1024
MS_NODIRATIME = 2048
MS_BIND = 4096
MS_MOVE = 8192
MS_REC = 16384
MS_SILENT = 32768
MS_UNBINDABLE = 1 << 17
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MS_RELATIME = 1 << 21
MS_STRICTATIME = 1 << 24
MS_LAZYTIME = 1 << 25
MNT_DETACH = 2

PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_RAISE = 2
PR_CAP_AMBIENT_CLEAR_ALL = 4

_mount = _fn("mount", _CharP, _CharP, _CharP, _ULong, _CharP)
_umount2 = _fn("umount2", _CharP, _Int)
_pivot_root = _fn("pivot_root", _CharP, _CharP)
_unshare = _fn("unshare", _Int)
_setns = _fn("setns", _Int, _Int)
_sethostname = _fn("sethostname", _CharP, _ULong)
_setdomainname = _fn("setdomainname", _CharP, _ULong)
_prctl = _fn("prctl", _Int, _ULong, _ULong, _ULong, _ULong)
_socket = _fn("socket", _Int, _Int, _Int)
_ioctl = _fn("ioctl", _Int, _ULong)  # variadic: the buffer argument is passed untyped


def _check(ret: int) -> int:
    if ret < 0:
        err = _ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return ret


def _b(s: str | None) -> bytes | None:
    return None if s is None else os.fsencode(s)


def mount(source: str | None, target: str, fstype: str | None, flags: int = 0,
          data: str | None = None) -> None:
    _check(_mount(_b(source), _b(target), _b(fstype), flags, _b(data)))


def umount2(target: str, flags: int = 0) -> None:
    _check(_umount2(_b(target), flags))


def pivot_root(new_root: str, put_old: str) -> None:
    _check(_pivot_root(_b(new_root), _b(put_old)))


def unshare(flags: int) -> None:
    _check(_unshare(flags))


def setns(fd: int, nstype: int) -> None:
    _check(_setns(fd, nstype))


def sethostname(name: str) -> None:
    raw = name.encode()
    _check(_sethostname(raw, len(raw)))


def setdomainname(name: str) -> None:
    raw = name.encode()
    _check(_setdomainname(raw, len(raw)))


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    return _check(_prctl(option, arg2, arg3, arg4, arg5))


class _CapHeader(_ctypes.Structure):
    _fields_ = [("version", _UInt32), ("pid", _Int)]


class _CapData(_ctypes.Structure):
    _fields_ = [("effective", _UInt32), ("permitted", _UInt32), ("inheritable", _UInt32)]


_CAP_V3 = 0x20080522
_capget = _fn("capget")
_capset = _fn("capset")


def capget() -> tuple[int, int, int]:
    """(effective, permitted, inheritable) of the calling thread as 64-bit masks."""
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    _check(_capget(_ctypes.byref(hdr), data))
    return (data[0].effective | data[1].effective << 32,
            data[0].permitted | data[1].permitted << 32,
            data[0].inheritable | data[1].inheritable << 32)


def capset(effective: int, permitted: int, inheritable: int) -> None:
    hdr = _CapHeader(_CAP_V3, 0)
    data = (_CapData * 2)()
    mask = 0xFFFFFFFF
    for i in (0, 1):
        shift = 32 * i
        data[i].effective = (effective >> shift) & mask
        data[i].permitted = (permitted >> shift) & mask
        data[i].inheritable = (inheritable >> shift) & mask
    _check(_capset(_ctypes.byref(hdr), data))


def bring_loopback_up() -> None:
    """Set IFF_UP on ``lo`` with the SIOCGIFFLAGS/SIOCSIFFLAGS ioctls on a datagram socket."""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    fd = _check(_socket(2, 2 | 0o2000000, 0))  # AF_INET, SOCK_DGRAM|SOCK_CLOEXEC
    try:
        ifreq = bytearray(40)
        ifreq[0:2] = b"lo"
        buf = (_Char * 40).from_buffer(ifreq)
        _check(_ioctl(fd, siocgifflags, buf))
        flags = int.from_bytes(ifreq[16:18], "little") | iff_up
        ifreq[16:18] = flags.to_bytes(2, "little")
        _check(_ioctl(fd, siocsifflags, buf))
    finally:
        os.close(fd)
