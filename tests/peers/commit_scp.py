"""A pynetdicom Storage + Storage Commitment (Push Model) SCP for pacs-net's tests.

Stores in memory (SOP Instance UID -> SOP Class UID) what it receives, and answers
an N-ACTION "Request Storage Commitment" with success, then reports: instances it
holds (under the same SOP class) are committed, others fail with 0112 (no such
object instance), or 0119 (held under another class), and the UIDs given with
--fail always fail with --fail-reason.

  python commit_scp.py PORT [--ae AET] [--report same|new|never]
                            [--report-port P] [--hold-all]
                            [--fail UID]... [--fail-reason 0110] [--delay S]

--report same: the N-EVENT-REPORT goes on the association of the N-ACTION, after its
  response (the reactor is paused while it is sent, as pynetdicom requires);
  new: on a new association to 127.0.0.1:--report-port, Called AE = the requester's
  AE title, SCP role for Storage Commitment asked for; never: no report at all.
--hold-all: commit every instance asked about (as if it held everything).
--delay S: wait S seconds before reporting.
"""
import argparse
import threading
import time

from pydicom.dataset import Dataset
from pynetdicom import AE, evt, AllStoragePresentationContexts, ALL_TRANSFER_SYNTAXES, build_role
from pynetdicom.sop_class import StorageCommitmentPushModel, Verification

INSTANCE = "1.2.840.10008.1.20.1.1"

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("--ae", default="PYCOMMIT")
p.add_argument("--report", choices=["same", "new", "never"], default="same")
p.add_argument("--report-port", type=int, default=0)
p.add_argument("--hold-all", action="store_true")
p.add_argument("--fail", action="append", default=[])
p.add_argument("--fail-reason", default="0110")
p.add_argument("--delay", type=float, default=0.0)
args = p.parse_args()

held = {}
lock = threading.Lock()
fail_reason = int(args.fail_reason, 16)


def on_store(event):
    ds = event.dataset
    with lock:
        held[str(ds.SOPInstanceUID)] = str(ds.SOPClassUID)
    return 0x0000


def build_report(request):
    rsp = Dataset()
    rsp.TransactionUID = request.TransactionUID
    ok, failed = [], []
    for item in request.ReferencedSOPSequence:
        uid, cls = str(item.ReferencedSOPInstanceUID), str(item.ReferencedSOPClassUID)
        ref = Dataset()
        ref.ReferencedSOPClassUID = cls
        ref.ReferencedSOPInstanceUID = uid
        with lock:
            have = held.get(uid)
        if uid in args.fail:
            ref.FailureReason = fail_reason
            failed.append(ref)
        elif args.hold_all or have == cls:
            ok.append(ref)
        else:
            ref.FailureReason = 0x0112 if have is None else 0x0119
            failed.append(ref)
    if ok:
        rsp.ReferencedSOPSequence = ok
    if failed:
        rsp.FailedSOPSequence = failed
    return rsp, (2 if failed else 1)


def report_same(assoc, report, event_type):
    time.sleep(0.05 + args.delay)
    # The acceptor's reactor would take the N-EVENT-REPORT-RSP off the queue.
    assoc._reactor_checkpoint.clear()
    for _ in range(1000):
        if assoc._is_paused:
            break
        time.sleep(0.001)
    try:
        status, _ = assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel, INSTANCE)
        print(f"report sent on the same association: {status}", flush=True)
    finally:
        assoc._reactor_checkpoint.set()


def report_new(requestor_ae, report, event_type):
    time.sleep(0.05 + args.delay)
    ae = AE(ae_title=args.ae)
    ae.add_requested_context(StorageCommitmentPushModel)
    role = build_role(StorageCommitmentPushModel, scu_role=False, scp_role=True)
    assoc = ae.associate("127.0.0.1", args.report_port, ae_title=requestor_ae, ext_neg=[role])
    if not assoc.is_established:
        print("report association not established", flush=True)
        return
    status, _ = assoc.send_n_event_report(report, event_type, StorageCommitmentPushModel, INSTANCE)
    print(f"report sent on a new association: {status}", flush=True)
    assoc.release()


def on_n_action(event):
    request = event.action_information
    report, event_type = build_report(request)
    requestor = event.assoc.requestor.ae_title
    if isinstance(requestor, bytes):
        requestor = requestor.decode()
    requestor = requestor.strip()
    if args.report == "same":
        threading.Thread(target=report_same, args=(event.assoc, report, event_type), daemon=True).start()
    elif args.report == "new":
        threading.Thread(target=report_new, args=(requestor, report, event_type), daemon=True).start()
    return 0x0000, None


ae = AE(ae_title=args.ae)
ae.maximum_pdu_size = 16382
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES)
ae.add_supported_context(StorageCommitmentPushModel)
ae.add_supported_context(Verification)
ae.start_server(
    ("127.0.0.1", args.port),
    block=True,
    evt_handlers=[(evt.EVT_C_STORE, on_store), (evt.EVT_N_ACTION, on_n_action)],
)
