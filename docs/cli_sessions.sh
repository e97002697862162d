#!/usr/bin/env bash
# Regenerates docs/CLI.md: a session of each pacs-net command as a user sees it,
# run with the binary built from this tree against the embedded SCP (pacs-net scp)
# on a free loopback port. Nothing in CLI.md is written by hand below its header,
# so it cannot go stale: run this after changing what the CLI prints.
#
#   docs/cli_sessions.sh            (PACS_NET=path/to/pacs-net to use another build)
#
# Ports and temporary paths are normalised (the SCP to 11112, a closed port to 4243,
# the temp folder to /tmp/session) so that a regeneration only shows real changes;
# timings are as measured.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
if [ -z "${PACS_NET:-}" ]; then
  cargo build --quiet --bin pacs-net
  PACS_NET=$ROOT/target/debug/pacs-net
fi
WORK=$(mktemp -d "${TMPDIR:-/tmp}/pacs-net-doc.XXXXXX")
SCP_PID=
cleanup() {
  if [ -n "$SCP_PID" ]; then kill "$SCP_PID" 2>/dev/null || true; wait "$SCP_PID" 2>/dev/null || true; fi
  rm -rf "$WORK"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
DEAD=$(free_port)
LISTEN=$(free_port)
# Our own AE (PACSNET, the default calling AE) is a C-MOVE destination the SCP knows.
"$PACS_NET" scp --port "$PORT" --ae-title PACS --worklist fixtures/worklist \
  --move-dest "PACSNET=127.0.0.1:$LISTEN" >/dev/null 2>&1 &
SCP_PID=$!
for _ in $(seq 100); do
  python3 -c "import socket; socket.create_connection(('127.0.0.1', $PORT), 0.2)" 2>/dev/null && break
  sleep 0.05
done
mkdir -p "$WORK/empty" "$WORK/cd/IMAGES"
cp fixtures/dicom/patient1/study1/series1/1.dcm "$WORK/cd/IMAGES/IM0001"
cp fixtures/dicom/patient1/study1/series1/2.dcm "$WORK/cd/IMAGES/IM0002"
# A CD export as a viewer writes it: a DICOMDIR beside the images (DCMTK's dcmmkdir).
if [ -x /usr/bin/dcmmkdir ]; then
  (cd "$WORK/cd" && /usr/bin/dcmmkdir --invent +r IMAGES >/dev/null 2>&1) || true
fi
cat >"$WORK/hospital.json" <<JSON
{
  "local_ae_title": "WORKSTATION1",
  "nodes": {
    "MAIN_PACS": {"ae_title": "PACS", "host": "127.0.0.1", "port": $PORT, "pool": "main"},
    "OLD_PACS": {"ae_title": "OLD", "host": "127.0.0.1", "port": $DEAD}
  },
  "network": {"connection_pools": {"main": {"min_size": 0, "max_size": 4}}}
}
JSON

pacs-net() { "$PACS_NET" "$@"; }
export NO_COLOR=1
normalise() {
  sed -e "s#$WORK#/tmp/session#g" -e "s/127\.0\.0\.1:$PORT\b/127.0.0.1:11112/g" \
    -e "s/127\.0\.0\.1:$DEAD\b/127.0.0.1:4243/g" -e "s/\"port\": $PORT/\"port\": 11112/g" \
    -e "s/\"port\": $DEAD/\"port\": 4243/g" -e "s/\b$LISTEN\b/11113/g"
}
OUT=$WORK/CLI.md
# session TITLE COMMAND...: one console block, the command, what it printed
# (stdout and stderr, as on a terminal), and its exit code.
session() {
  local title=$1 cmd=$2 code=0
  {
    printf '\n### %s\n\n```console\n$ %s\n' "$title" "$cmd"
    eval "$cmd" >"$WORK/out.txt" 2>&1 || code=$?
    cat "$WORK/out.txt"
    printf '$ echo $?\n%s\n```\n' "$code"
  } | normalise >>"$OUT"
}

cat >"$OUT" <<'MD'
# pacs-net on the command line

Every block below is real output, produced by `docs/cli_sessions.sh` with the binary
built from this tree against the embedded SCP (`pacs-net scp --ae-title PACS`) on a
free loopback port (shown as 11112; a closed port is shown as 4243). Do not edit it
by hand: run the script. Results are on stdout; failures, warnings, statistics and
logs on stderr (both are shown here, as on a terminal).

Exit codes: `0` every operation succeeded, `1` at least one failed, `2` usage or
configuration error, `130` interrupted by Ctrl-C (after the summary and the report).
MD

printf '\n## Help\n' >>"$OUT"
session "The overview, with examples and exit codes" "pacs-net --help"
session "Every option of a command has help" "pacs-net store --help"

printf '\n## echo\n' >>"$OUT"
session "Ten C-ECHOs through the pool" "pacs-net echo PACS@127.0.0.1:$PORT --count 10"
session "A node that refuses: one quick retry, then the root cause once" "pacs-net echo DEAD@127.0.0.1:$DEAD --count 5"
session "A host name that does not resolve" "pacs-net echo PACS@pacs.invalid:104"
session "-v: association negotiation (first lines: 119 contexts follow)" "pacs-net -v echo PACS@127.0.0.1:$PORT 2>&1 | sed -n 1,6p"
session "-vv: every DIMSE message and PDU" "pacs-net -vv echo PACS@127.0.0.1:$PORT 2>&1 | grep -E 'dimse_trace'"
session "Statistics on stderr (here as CSV, one row per node)" "pacs-net echo PACS@127.0.0.1:$PORT --count 3 --stats --stats-format csv"

printf '\n## store\n' >>"$OUT"
session "A folder, with a report" "pacs-net store PACS@127.0.0.1:$PORT fixtures/dicom --concurrency 2 --report $WORK/report.json"
session "The report" "head -c 600 $WORK/report.json; echo"
session "Bad files do not stop the others" "pacs-net store PACS@127.0.0.1:$PORT fixtures/broken fixtures/dicom/patient2"
session "A CD export: the DICOMDIR is skipped" "ls -R $WORK/cd && pacs-net store PACS@127.0.0.1:$PORT $WORK/cd"
session "An empty folder" "pacs-net store PACS@127.0.0.1:$PORT $WORK/empty"
session "A report that cannot be written is found before anything is sent" "pacs-net store PACS@127.0.0.1:$PORT fixtures/dicom --report /nonexistent/report.json"
session "A node that is down: the cause is said once, the report still lists every file" "pacs-net -c $WORK/hospital.json store OLD_PACS fixtures/dicom"

printf '\n## find\n' >>"$OUT"
session "Columns in the order of the keys" "pacs-net find PACS@127.0.0.1:$PORT -k PatientName -k PatientID -k StudyDate -k ModalitiesInStudy"
session "CSV" "pacs-net -c $WORK/hospital.json find MAIN_PACS --level series -k StudyInstanceUID=1.2.826.0.1.3680043.10.1234.1.1 -k Modality -k SeriesNumber --format csv"
session "The DICOM JSON model, stopping after one match (C-CANCEL)" "pacs-net find PACS@127.0.0.1:$PORT -k PatientID -k StudyDate=20240101-20241231 --format json --limit 1"
session "No match" "pacs-net find PACS@127.0.0.1:$PORT -k PatientID=NOBODY -k StudyDate --format csv"
session "A query value that does not fit its VR" "pacs-net find PACS@127.0.0.1:$PORT -k Rows=abc"
session "PATIENT level needs the Patient Root model" "pacs-net find PACS@127.0.0.1:$PORT --level patient -k PatientName"
session "A find that never reached the PACS prints no result" "pacs-net find DEAD@127.0.0.1:$DEAD -k PatientID --format json"

printf '\n## worklist\n\nThe embedded SCP here answers from the bundled worklist files (`scp --worklist fixtures/worklist`).\n' >>"$OUT"
session "The usual worklist keys, as a table (sequence attributes as dotted columns)" "pacs-net worklist PACS@127.0.0.1:$PORT"
session "Sequence keys: CT steps scheduled in the first ten days of December, as CSV" "pacs-net worklist PACS@127.0.0.1:$PORT -k PatientName -k ScheduledProcedureStepSequence.Modality=CT -k ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261210 -k ScheduledProcedureStepSequence.ScheduledStationAETitle --format csv"
session "The DICOM JSON model: person name groups, the sequence as SQ with its item" "pacs-net worklist PACS@127.0.0.1:$PORT -k PatientName -k ScheduledProcedureStepSequence.Modality=MR -k ScheduledProcedureStepSequence.ScheduledProcedureStepID --format json"
session "A non-ASCII query value (sent as ISO_IR 192)" "pacs-net worklist PACS@127.0.0.1:$PORT -k 'PatientName=*山田*' -k PatientID"
session "A date that is not a date" "pacs-net worklist PACS@127.0.0.1:$PORT -k ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=tomorrow"

STUDY=1.2.826.0.1.3680043.10.1234.1.1
printf '\n## get and move\n\nThe SCP holds what the store sessions above sent it; it knows our AE title (PACSNET) as a C-MOVE destination at 127.0.0.1:11113.\n' >>"$OUT"
session "C-GET of a study: files under DIR/<study>/<series>/" "pacs-net get PACS@127.0.0.1:$PORT -k StudyInstanceUID=$STUDY --out $WORK/got --no-progress --report $WORK/get.json && (cd $WORK/got && find . -name '*.dcm' | sort)"
session "The report" "head -c 500 $WORK/get.json; echo"
session "C-GET of the same study, one series per association (--concurrency)" "pacs-net get PACS@127.0.0.1:$PORT -k StudyInstanceUID=$STUDY --out $WORK/got-spread --concurrency 2 --no-progress && (cd $WORK/got-spread && find . -name '*.dcm' | sort)"
session "C-MOVE to ourselves: a listener on --port takes the PACS's C-STOREs" "pacs-net move PACS@127.0.0.1:$PORT -k StudyInstanceUID=$STUDY --level study --out $WORK/moved --port $LISTEN --no-progress"
session "A C-MOVE destination the PACS does not know (A801)" "pacs-net move PACS@127.0.0.1:$PORT --dest NOBODY -k StudyInstanceUID=$STUDY --no-progress"
session "A key a retrieve needs is missing" "pacs-net get PACS@127.0.0.1:$PORT --out $WORK/got2"

printf '\n## commit\n\nStorage Commitment: the SCP here reports on the same association (`scp --commit-report new` reports on a new one, to our listener on `--port`).\n' >>"$OUT"
session "Ask the PACS to commit instances it holds" "pacs-net commit PACS@127.0.0.1:$PORT fixtures/dicom/patient2 --report $WORK/commit.json"
session "The report" "head -c 400 $WORK/commit.json; echo"
session "store --commit: stored, then committed" "pacs-net store PACS@127.0.0.1:$PORT fixtures/dicom/patient3 --commit --no-progress"

printf '\n## config\n' >>"$OUT"
session "Check a config (-c, or PACS_NET_CONFIG, or a FILE)" "pacs-net -c $WORK/hospital.json config check"
session "An unknown node" "pacs-net -c $WORK/hospital.json echo BACKUP_PACS"
session "The JSON Schema, for editors" "pacs-net config schema | head -20"

printf '\n## Shell completions\n' >>"$OUT"
session "bash, zsh, fish, elvish, powershell" "pacs-net completions bash > $WORK/pacs-net.bash && wc -l < $WORK/pacs-net.bash"

printf '\n## demo\n' >>"$OUT"
session "The tour: embedded SCP, echo, store, find, worklist, get, move, commit, statistics" "pacs-net demo"

cp "$OUT" "$ROOT/docs/CLI.md"
echo "wrote docs/CLI.md" >&2
