"""The helper process of :mod:`~.filecreator`: creates and writes the files it is sent.

Run as ``python -I -S _createchild.py`` (isolated: no environment variable, user
site or path of the caller changes what runs here), it imports the standard
library only. It reads records from its standard input, each a header
(``<IIQ``: the target's length in UTF-8 bytes, the file's mode, the data's
length), the target (an absolute path the parent checked) and the data (bytes
the parent checked against their digest), and creates each file with
``O_WRONLY|O_CREAT|O_EXCL|O_NOFOLLOW`` and the mode, writes it and closes it, in
the order sent. At the end of its input it writes ``ok COUNT`` to its standard
output and exits 0. On the first failure it removes the file it was writing,
writes ``error INDEX ERRNO TARGET-HEX STRERROR`` and exits 1 without reading further
(the parent sees a broken pipe, then this line).
"""

from __future__ import annotations

import contextlib
import os
import signal
import struct
import sys

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
_HEADER = struct.Struct("<IIQ")


def main() -> int:
    # Interrupts go to the parent, which ends this process when it gives up.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    source = open(0, "rb", buffering=1 << 20)  # noqa: SIM115 (closed at exit)
    report = sys.stdout
    count = 0
    header_size = _HEADER.size
    read = source.read
    unpack = _HEADER.unpack
    while header := read(header_size):
        if len(header) != header_size:
            report.write("error -1 0 - truncated record\n")
            return 1
        target_size, mode, size = unpack(header)
        target = read(target_size)
        data = read(size)
        if len(target) != target_size or len(data) != size:
            report.write("error -1 0 - truncated record\n")
            return 1
        try:
            fd = os.open(target, _CREATE, mode)
        except OSError as exc:
            report.write(f"error {count} {exc.errno or 0} {target.hex()} {exc.strerror}\n")
            return 1
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.close(fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(OSError):
                os.unlink(target)
            report.write(f"error {count} {exc.errno or 0} {target.hex()} {exc.strerror}\n")
            return 1
        count += 1
    report.write(f"ok {count}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
