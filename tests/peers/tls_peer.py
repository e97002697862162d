"""pynetdicom over DICOM TLS (ssl.SSLContext), for pacs-net's interop_tls tests.

  python tls_peer.py scp PORT OUT [--cert C --key K] [--ca CA] [--max-tls12]
                               [--user NAME --password PW] [--respond-identity]
      Verification + Storage SCP. --ca: a client certificate signed by CA is
      required. --user: EVT_USER_ID accepts only that username (and passcode);
      any other identity, or none, rejects the association. OUT/identity.log gets
      one line per identity seen ("type user ok|refused"); OUT/received.tsv one
      line per stored instance.
  python tls_peer.py echo HOST PORT AET --ca CA [--cert C --key K] [--server-name N]
      One C-ECHO to our SCP over TLS; exit 0 on status 0000.
"""
import argparse
import os
import ssl
import sys
import threading

from pynetdicom import AE, evt, ALL_TRANSFER_SYNTAXES
from pynetdicom.sop_class import Verification
from pynetdicom.presentation import AllStoragePresentationContexts

p = argparse.ArgumentParser()
sub = p.add_subparsers(dest="mode", required=True)
s = sub.add_parser("scp")
s.add_argument("port", type=int)
s.add_argument("out")
s.add_argument("--cert")
s.add_argument("--key")
s.add_argument("--ca")
s.add_argument("--max-tls12", action="store_true")
s.add_argument("--user")
s.add_argument("--password")
s.add_argument("--respond-identity", action="store_true")
e = sub.add_parser("echo")
e.add_argument("host")
e.add_argument("port", type=int)
e.add_argument("aet")
e.add_argument("--ca", required=True)
e.add_argument("--cert")
e.add_argument("--key")
e.add_argument("--server-name")
args = p.parse_args()

if args.mode == "echo":
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=args.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.cert:
        ctx.load_cert_chain(args.cert, args.key)
    ae = AE(ae_title="PYTLS")
    ae.add_requested_context(Verification)
    assoc = ae.associate(args.host, args.port, ae_title=args.aet,
                         tls_args=(ctx, args.server_name or args.host))
    if not assoc.is_established:
        print("association failed", file=sys.stderr)
        sys.exit(1)
    status = assoc.send_c_echo()
    assoc.release()
    ok = status is not None and status.Status == 0
    print("echo", "ok" if ok else "failed")
    sys.exit(0 if ok else 1)

os.makedirs(args.out, exist_ok=True)
lock = threading.Lock()
received = open(os.path.join(args.out, "received.tsv"), "a", buffering=1)
identities = open(os.path.join(args.out, "identity.log"), "a", buffering=1)


def on_store(event):
    req = event.request
    with lock:
        received.write(f"{req.AffectedSOPClassUID}\t{req.AffectedSOPInstanceUID}\n")
    return 0x0000


def on_user_id(event):
    user = event.primary_field.decode("utf-8", "replace")
    ok = user == args.user
    if args.password is not None:
        ok = ok and event.secondary_field is not None and event.secondary_field.decode("utf-8", "replace") == args.password
    with lock:
        # The test checks which identity arrived; the passcode is compared, never written.
        identities.write(f"{event.user_id_type}\t{user}\t{'ok' if ok else 'refused'}\n")
    return ok, (b"confirmed" if ok and args.respond_identity else None)


ae = AE(ae_title="PYTLS")
ae.require_called_aet = False
SYNTAXES = list(ALL_TRANSFER_SYNTAXES)
ae.add_supported_context(Verification, SYNTAXES)
for cx in AllStoragePresentationContexts:
    ae.add_supported_context(cx.abstract_syntax, SYNTAXES)

ctx = None
if args.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if args.max_tls12:
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(args.cert, args.key)
    if args.ca:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(args.ca)

handlers = [(evt.EVT_C_STORE, on_store)]
if args.user:
    handlers.append((evt.EVT_USER_ID, on_user_id))
print("ready", flush=True)
ae.start_server(("127.0.0.1", args.port), block=True, ssl_context=ctx, evt_handlers=handlers)
