"""A pynetdicom Storage SCP for pacs-net's tests and benchmarks.

Accepts every storage SOP class (and any other proposed abstract syntax) in every
transfer syntax it is offered, and writes each received data set *as it arrived*
(raw bytes, in the transfer syntax of its presentation context) to
OUT/NNNNN.bin, with a line per instance in OUT/received.tsv:
index, SOP Class UID, SOP Instance UID, transfer syntax UID, byte count.

  python store_scp.py PORT OUT [--ae AET] [--max-pdu N] [--prefer implicit]
                                [--no-write]

--max-pdu 0 announces "no limit" (PS3.8 D.1). --no-write only counts (benchmarks).
"""
import argparse
import os
import sys
import threading

from pynetdicom import AE, evt, ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("out")
p.add_argument("--ae", default="PYSTORE")
p.add_argument("--max-pdu", type=int, default=16382)
p.add_argument("--no-write", action="store_true")
args = p.parse_args()

os.makedirs(args.out, exist_ok=True)
lock = threading.Lock()
count = [0]
log = open(os.path.join(args.out, "received.tsv"), "a", buffering=1)


def on_store(event):
    req = event.request
    raw = req.DataSet.getvalue()
    ts = str(event.context.transfer_syntax)
    with lock:
        count[0] += 1
        n = count[0]
        if not args.no_write:
            with open(os.path.join(args.out, f"{n:05d}.bin"), "wb") as f:
                f.write(raw)
        log.write(f"{n}\t{req.AffectedSOPClassUID}\t{req.AffectedSOPInstanceUID}\t{ts}\t{len(raw)}\n")
    return 0x0000


# Explicit VR Big Endian is retired, and pynetdicom leaves it out of its list.
SYNTAXES = list(ALL_TRANSFER_SYNTAXES) + ["1.2.840.10008.1.2.2"]

ae = AE(ae_title=args.ae)
ae.maximum_pdu_size = args.max_pdu
ae.require_called_aet = False
ae.add_supported_context(Verification, SYNTAXES)
from pynetdicom.presentation import AllStoragePresentationContexts

for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, SYNTAXES)
# Classes pydicom's samples use that pynetdicom's storage list may lack.
for uid in os.environ.get("EXTRA_SOP_CLASSES", "").split(","):
    if uid:
        ae.add_supported_context(uid, SYNTAXES)
print("ready", flush=True)
ae.start_server(("127.0.0.1", args.port), block=True, evt_handlers=[(evt.EVT_C_STORE, on_store)])
