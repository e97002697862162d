#!/usr/bin/env python3
"""Seed the fuzz corpora from fixtures/ (run from the repository root or fuzz/).

fuzz/corpus/<target>/ gets: Part 10 files (instance_file), their data sets with a
transfer-syntax byte in front (find_identifier), DIMSE command sets (command_set),
PDV streams of a command and a data set (message_reader), and configs (config).
"""
import pathlib
import struct
import sys

root = pathlib.Path(__file__).resolve().parent.parent
corpus = root / "fuzz" / "corpus"
TS_INDEX = {"1.2.840.10008.1.2": 0, "1.2.840.10008.1.2.1": 1, "1.2.840.10008.1.2.2": 2}
MAX_SEED = 64 * 1024  # larger seeds slow every run down


def put(target, name, data):
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


def element(elem, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, elem, len(value)) + value


def command(fields):
    body = b"".join(element(e, v) for e, v in sorted(fields.items()))
    return element(0, struct.pack("<I", len(body))) + body


def us(v):
    return struct.pack("<H", v)


def data_set_of(part10):
    """(transfer syntax uid, data set bytes) of a Part 10 file, or None."""
    if len(part10) < 144 or part10[128:132] != b"DICM":
        return None
    pos, ts = 132, None
    while pos + 8 <= len(part10):
        group, elem = struct.unpack_from("<HH", part10, pos)
        if group != 2:
            break
        vr = part10[pos + 4:pos + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT", b"UC", b"UR"):
            length = struct.unpack_from("<I", part10, pos + 8)[0]
            start = pos + 12
        else:
            length = struct.unpack_from("<H", part10, pos + 6)[0]
            start = pos + 8
        if elem == 0x0010:
            ts = part10[start:start + length].rstrip(b"\0 ").decode("ascii", "replace")
        pos = start + length
    return ts, part10[pos:]


def main():
    files = sorted(p for p in (root / "fixtures").rglob("*") if p.is_file() and p.suffix in (".dcm", ".txt"))
    n = 0
    for p in files:
        data = p.read_bytes()
        if len(data) > MAX_SEED:
            continue
        name = p.relative_to(root / "fixtures").as_posix().replace("/", "_")
        put("instance_file", name, data)
        parsed = data_set_of(data)
        if parsed and parsed[0] in TS_INDEX and len(parsed[1]) <= MAX_SEED:
            ts, ds = parsed
            put("find_identifier", name, bytes([TS_INDEX[ts]]) + ds)
            # transcode: first byte = from + 3 * to (0 implicit, 1 explicit LE, 2 BE).
            for to in range(3):
                if to != TS_INDEX[ts]:
                    put("transcode", f"{name}_to{to}", bytes([TS_INDEX[ts] + 3 * to]) + ds)
            cmd = command({0x0002: b"1.2.840.10008.5.1.4.1.2.2.1", 0x0100: us(0x8020), 0x0120: us(1),
                           0x0800: us(0), 0x0900: us(0xFF00)})
            stream = bytes([3, 1]) + struct.pack("<H", len(cmd)) + cmd
            chunk = ds[:0xFFFF]
            stream += bytes([2 | (TS_INDEX[ts] << 2), 1]) + struct.pack("<H", len(chunk)) + chunk
            put("message_reader", name, stream)
        n += 1
    find_rq = command({0x0002: b"1.2.840.10008.5.1.4.1.2.2.1", 0x0100: us(0x0020), 0x0110: us(1),
                       0x0700: us(0), 0x0800: us(0)})
    store_rsp = command({0x0002: b"1.2.840.10008.5.1.4.1.1.2", 0x0100: us(0x8001), 0x0120: us(7),
                         0x0800: us(0x0101), 0x0900: us(0xB000), 0x0902: b"coerced",
                         0x1000: b"1.2.826.0.1.3680043.10.1234.1"})
    cancel = command({0x0100: us(0x0FFF), 0x0120: us(1), 0x0800: us(0x0101)})
    for name, c in [("find_rq", find_rq), ("store_rsp", store_rsp), ("cancel", cancel)]:
        put("command_set", name, c)
        put("message_reader", "cmd_" + name, bytes([3, 1]) + struct.pack("<H", len(c)) + c)
    for p in sorted((root / "config").glob("*.json")):
        put("config", p.name, p.read_bytes())
    put("config", "limits.json", b'{"nodes": {"A": {"ae_title": "A", "host": "::1", "port": 104, '
        b'"limits": {"max_command_bytes": 8192}}}, "network": {"limits": {"max_data_set_bytes": 1048576}}}')
    print(f"seeded from {n} fixture files into {corpus}", file=sys.stderr)


main()
