"""A pynetdicom Query/Retrieve C-GET SCP for pacs-net's tests.

Serves Study Root and Patient Root C-GET (and C-FIND at IMAGE level, for the
SOP classes) over the DICOM files under DIR, matched on the identifier's
StudyInstanceUID / SeriesInstanceUID / SOPInstanceUID / PatientID where given.

  python qr_get_scp.py PORT DIR [--ae AET] [--bogus-class UID] [--delay S]

--bogus-class UID: the instance with this SOP Instance UID is sent with a SOP
class nobody negotiated, so its sub-operation fails (a partial failure, B000,
with that UID in the Failed SOP Instance UID List).
--delay S: wait S seconds before each sub-operation (to cancel mid-retrieve).
"""
import argparse
import glob
import os
import time

from pydicom import dcmread
from pynetdicom import AE, evt, StoragePresentationContexts, ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("dir")
p.add_argument("--ae", default="PYQR")
p.add_argument("--bogus-class", default=None)
p.add_argument("--delay", type=float, default=0.0)
args = p.parse_args()

files = sorted(glob.glob(os.path.join(args.dir, "**", "*.dcm"), recursive=True))
datasets = [dcmread(f) for f in files]

KEYS = ("PatientID", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def matching(identifier):
    out = []
    for ds in datasets:
        ok = True
        for k in KEYS:
            want = getattr(identifier, k, None)
            if want not in (None, "", "*") and str(getattr(ds, k, "")) != str(want):
                ok = False
        if ok:
            out.append(ds)
    return out


def on_get(event):
    found = matching(event.identifier)
    yield len(found)
    for ds in found:
        if event.is_cancelled:
            yield (0xFE00, None)
            return
        if args.delay:
            time.sleep(args.delay)
        if args.bogus_class and ds.SOPInstanceUID == args.bogus_class:
            ds = ds.copy()
            ds.SOPClassUID = "1.2.826.0.1.3680043.10.1234.99.1"
            ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
        yield (0xFF00, ds)


def on_find(event):
    for ds in matching(event.identifier):
        if event.is_cancelled:
            yield (0xFE00, None)
            return
        rsp = event.identifier.copy()
        for k in list(rsp.keys()):
            elem = rsp[k]
            if elem.keyword and hasattr(ds, elem.keyword):
                setattr(rsp, elem.keyword, getattr(ds, elem.keyword))
        yield (0xFF00, rsp)


ae = AE(ae_title=args.ae)
ae.maximum_pdu_size = 16382
for cx in (
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
):
    ae.add_supported_context(cx)
for cx in StoragePresentationContexts:
    # Grant the requestor the SCP role it proposes for storage (PS3.7 D.3.3.4).
    ae.add_supported_context(cx.abstract_syntax, ALL_TRANSFER_SYNTAXES, scu_role=True, scp_role=True)
ae.start_server(
    ("127.0.0.1", args.port),
    evt_handlers=[(evt.EVT_C_GET, on_get), (evt.EVT_C_FIND, on_find)],
)
