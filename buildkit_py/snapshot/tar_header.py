"""Tar header encoding for layer export, byte-identical to BuildKit's layers.

BuildKit's layers come from Go's ``archive/tar`` (containerd's change writer, with the
PAX format allowed, then BuildKit's timestamp rewriter), so the image ID under
SOURCE_DATE_EPOCH hangs on writing exactly Go's bytes. Go's writer:

- prefers plain USTAR: a name of 101..256 ASCII bytes is split into the ``prefix`` and
  ``name`` fields when it can be;
- writes a PAX extended header only when USTAR cannot hold the entry (a name that cannot
  be split, a long or non-ASCII link target, numbers too large for their octal field,
  xattr records). The extended header is named ``DIR/PaxHeaders.0/BASE``, holds the
  records sorted by key, and the main header then carries the ASCII characters of the
  name (truncated to its field);
- always formats the device number fields as octal (``0000000``), except in the PAX
  extended header itself, where they stay NUL;
- leaves uname/gname empty (containerd does no name lookups).

``header`` formats the common case (short ASCII names, numbers that fit) with one
``%`` format; ``_go_header`` does everything else.
"""

from __future__ import annotations

import posixpath
from collections.abc import Mapping

REGTYPE = b"0"
LNKTYPE = b"1"
SYMTYPE = b"2"
CHRTYPE = b"3"
BLKTYPE = b"4"
DIRTYPE = b"5"
FIFOTYPE = b"6"
XHDTYPE = b"x"

_NAME_MAX = 100
_PREFIX_MAX = 155
_SMALL_MAX = 8**7  # mode, uid, gid, device numbers: 7 octal digits
_LARGE_MAX = 8**11  # size, mtime: 11 octal digits
_ZERO_DEVICES = b"0000000\x000000000\x00"
# magic "ustar\0" + version "00", empty uname and gname (2 x 32 bytes)
_MAGIC_OWNERS = b"ustar\x0000" + bytes(64)
# prefix (155 bytes) and the block's 12 bytes of padding
_END = bytes(167)
# The checksum treats its own 8-byte field as spaces.
_CHECKSUM_SPACES = 8 * 0x20
_EMPTY_LINK = bytes(_NAME_MAX)
# Everything after the checksum field for entries without link target or device
# numbers, and the byte sum of that part, per type flag.
_PLAIN_TAILS = {t: t + _EMPTY_LINK + _MAGIC_OWNERS + _ZERO_DEVICES + _END
                for t in (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, FIFOTYPE, CHRTYPE, BLKTYPE)}
_PLAIN_TAIL_SUMS = {t: sum(tail) for t, tail in _PLAIN_TAILS.items()}


def header(
    name: str, typeflag: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
    linkname: str = "", devmajor: int = 0, devminor: int = 0,
    pax: Mapping[str, str] | None = None,
) -> bytes:
    """The header block(s) of one entry. ``name`` is final (a directory's ends in
    "/"), ``mode`` holds permission bits only, ``pax`` are extra records (xattrs)."""
    if (
        not pax
        and len(name) <= _NAME_MAX
        and name.isascii()
        and 0 <= uid < _SMALL_MAX
        and 0 <= gid < _SMALL_MAX
        and 0 <= size < _LARGE_MAX
        and 0 <= mtime < _LARGE_MAX
        and (not linkname or (len(linkname) <= _NAME_MAX and linkname.isascii()))
        and 0 <= devmajor < _SMALL_MAX
        and 0 <= devminor < _SMALL_MAX
        and "\0" not in name
    ):
        head = b"%s%07o\0%07o\0%07o\0%011o\0%011o\0" % (
            name.encode().ljust(_NAME_MAX, b"\0"), mode & 0o7777, uid, gid, size, mtime)
        if linkname or devmajor or devminor:
            tail = (typeflag + linkname.encode().ljust(_NAME_MAX, b"\0") + _MAGIC_OWNERS
                    + b"%07o\0%07o\0" % (devmajor, devminor) + _END)
            total = sum(tail)
        else:
            tail = _PLAIN_TAILS[typeflag]
            total = _PLAIN_TAIL_SUMS[typeflag]
        checksum = _CHECKSUM_SPACES + sum(head) + total
        return head + b"%06o\0 " % checksum + tail
    return _go_header(name, typeflag, mode, uid, gid, size, mtime, linkname, devmajor,
                      devminor, pax)


def _fits(width: int, value: int) -> bool:
    """Whether ``value`` fits an octal field of ``width`` bytes (one kept for the NUL)."""
    return 0 <= value < 8 ** (width - 1)


def _octal(value: int, width: int) -> bytes:
    """Go's formatOctal: zero-padded digits and a NUL; a value that does not fit is 0
    (its real value is then in a PAX record)."""
    return b"%0*o\0" % (width - 1, value if _fits(width, value) else 0)


def _field(value: bytes, width: int) -> bytes:
    """Go's formatString: truncated to the field; a truncation that would leave a
    trailing slash ends the field before the slashes instead."""
    if len(value) > width:
        cut = value[:width]
        if cut.endswith(b"/"):
            n = len(value[:width - 1].rstrip(b"/"))
            cut = cut[:n] + b"\0" + cut[n + 1:]
        return cut
    return value.ljust(width, b"\0")


def _ascii(value: bytes) -> bytes:
    """Go's toASCII: only the ASCII bytes, NULs dropped."""
    return bytes(b for b in value if 0 < b < 0x80) if not value.isascii() or b"\0" in value \
        else value


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """Go's splitUSTARPath: (prefix, name) for a long ASCII name, or None."""
    length = len(name)
    if length <= _NAME_MAX or not name.isascii():
        return None
    if length > _PREFIX_MAX + 1:
        length = _PREFIX_MAX + 1
    elif name[length - 1:length] == b"/":
        length -= 1
    i = name.rfind(b"/", 0, length)
    suffix_len = len(name) - i - 1
    if i <= 0 or suffix_len > _NAME_MAX or suffix_len == 0 or i > _PREFIX_MAX:
        return None
    return name[:i], name[i + 1:]


def _block(name: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
           typeflag: bytes, linkname: bytes, devices: bytes, prefix: bytes) -> bytes:
    head = (_field(name, _NAME_MAX) + _octal(mode, 8) + _octal(uid, 8) + _octal(gid, 8)
            + _octal(size, 12) + _octal(mtime, 12))
    tail = (typeflag + _field(linkname, _NAME_MAX) + _MAGIC_OWNERS + devices
            + _field(prefix, _PREFIX_MAX) + bytes(12))
    checksum = _CHECKSUM_SPACES + sum(head) + sum(tail)
    return head + b"%06o\0 " % checksum + tail


def _pax_record(key: bytes, value: bytes) -> bytes:
    size = len(key) + len(value) + 3
    size += len(str(size))
    record = b"%d %s=%s\n" % (size, key, value)
    if len(record) != size:
        record = b"%d %s=%s\n" % (len(record), key, value)
    return record


def _go_header(
    name: str, typeflag: bytes, mode: int, uid: int, gid: int, size: int, mtime: int,
    linkname: str, devmajor: int, devminor: int, pax: Mapping[str, str] | None,
) -> bytes:
    """What Go's ``tar.Writer.WriteHeader`` writes when the fast path does not apply."""
    bname = name.encode("utf-8", "surrogateescape")
    blink = linkname.encode("utf-8", "surrogateescape")
    records: dict[bytes, bytes] = {}
    ustar = True
    if not bname.isascii() or len(bname) > _NAME_MAX:
        # the record is kept even when a split makes USTAR possible (used if PAX is needed)
        records[b"path"] = bname
        if _split_ustar(bname) is None:
            ustar = False
    if not blink.isascii() or len(blink) > _NAME_MAX:
        records[b"linkpath"] = blink
        ustar = False
    for key, value, width in ((b"uid", uid, 8), (b"gid", gid, 8), (b"size", size, 12),
                              (b"mtime", mtime, 12)):
        if not _fits(width, value):
            records[key] = str(value).encode()
            ustar = False
    if not (_fits(8, devmajor) and _fits(8, devminor)):
        raise ValueError(f"device numbers {devmajor}:{devminor} of {name} do not fit a tar header")
    devices = _octal(devmajor, 8) + _octal(devminor, 8)
    if pax:
        for pkey, pvalue in pax.items():
            records.setdefault(pkey.encode("utf-8", "surrogateescape"),
                               pvalue.encode("utf-8", "surrogateescape"))
        ustar = False
    if ustar:
        prefix, short = _split_ustar(bname) or (b"", bname)
        return _block(short, mode & 0o7777, uid, gid, size, mtime, typeflag, blink, devices,
                      prefix)
    data = b"".join(_pax_record(k, records[k]) for k in sorted(records))
    slash = bname.rfind(b"/") + 1
    xname = posixpath.normpath(b"/".join(
        p for p in (bname[:slash], b"PaxHeaders.0", bname[slash:]) if p))
    if xname.startswith(b"//"):  # Go's path.Clean keeps one leading slash, not two
        xname = b"/" + xname.lstrip(b"/")
    xname = _ascii(xname)[:_NAME_MAX].rstrip(b"/")
    extended = _block(xname, 0, 0, 0, len(data), 0, XHDTYPE, b"", bytes(16), b"")
    main = _block(_ascii(bname), mode & 0o7777, uid, gid, size, mtime, typeflag,
                  _ascii(blink), devices, b"")
    return extended + data + bytes(-len(data) % 512) + main
