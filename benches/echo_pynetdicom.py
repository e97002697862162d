#!/usr/bin/env python3
"""N C-ECHOs on one pynetdicom association, TCP_NODELAY set on the client socket.

    python3 benches/echo_pynetdicom.py HOST PORT [--count N] [--aec AET] [--aet AET]

The comparison point for `pacs-net echo --count N` in benches/echo_vs_echoscu.sh.
Needs pynetdicom (`pip install pynetdicom`); exits 1 if an association or an echo
fails, and prints one summary line (same shape as pacs-net's: count, wall, latency).
"""

import argparse
import socket
import statistics
import sys
import time

from pynetdicom import AE
from pynetdicom.sop_class import Verification


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--aec", default="STORESCP")
    p.add_argument("--aet", default="PYNETDICOM")
    a = p.parse_args()

    ae = AE(ae_title=a.aet)
    ae.add_requested_context(Verification)
    started = time.perf_counter()
    assoc = ae.associate(a.host, a.port, ae_title=a.aec)
    if not assoc.is_established:
        print("error: association not established", file=sys.stderr)
        return 1
    # Nagle off on our side, as pacs-net does (pynetdicom leaves it on).
    assoc.dul.socket.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    latencies = []
    failed = 0
    for _ in range(a.count):
        t0 = time.perf_counter()
        status = assoc.send_c_echo()
        latencies.append((time.perf_counter() - t0) * 1000.0)
        if not status or status.Status != 0x0000:
            failed += 1
    assoc.release()
    wall = time.perf_counter() - started
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    print(
        f"{a.count} echoes: {a.count - failed} ok, {failed} failed in {wall:.3f} s; latency ms "
        f"min {latencies[0]:.3f} median {statistics.median(latencies):.3f} p99 {p99:.3f} max {latencies[-1]:.3f}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
