//! Command-line arguments (the interface is fixed in the project spec).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Examples and exit codes, shown at the end of `pacs-net --help`.
const AFTER_HELP: &str = "\
Examples:
  pacs-net echo ORTHANC@127.0.0.1:4242 --count 10
  pacs-net -c hospital.json store MAIN_PACS /data/study --concurrency 4 --report report.json
  pacs-net find ORTHANC@127.0.0.1:4242 -k PatientID=PNT-0001 -k PatientName -k StudyDate
  pacs-net find MAIN_PACS --level series -k StudyInstanceUID=1.2.3 -k Modality --format csv
  pacs-net config check hospital.json
  pacs-net demo

TARGET is a node name from the config (-c FILE or PACS_NET_CONFIG), or AET@HOST:PORT.
Results go to stdout; failures, warnings, statistics and logs go to stderr.

Exit codes:
  0    every operation succeeded (a DIMSE warning counts as success, and is reported)
  1    at least one operation failed (refused, rejected, aborted, circuit open,
       timeout, DIMSE failure status, unreadable or non-DICOM file, no input files)
  2    usage or configuration error (bad flags, invalid config, unknown node,
       invalid AE title, a query value that does not fit its VR, unwritable report)
  130  interrupted by Ctrl-C (after the summary and the partial report)";

const NETWORK_HELP: &str = "\
Exit codes: 0 all succeeded, 1 at least one failed, 2 usage or configuration error, 130 Ctrl-C.";

#[derive(Debug, Parser)]
#[command(
    name = "pacs-net",
    version,
    about = "Pooled, resilient DICOM C-ECHO / C-STORE / C-FIND",
    propagate_version = true,
    after_help = AFTER_HELP
)]
/// The `pacs-net` command line: global options and a subcommand.
pub struct Cli {
    /// Hospital JSON config (without it, TARGET must be AET@HOST:PORT).
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        env = "PACS_NET_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Our own AE title (overrides the config's local_ae_title; default PACSNET).
    #[arg(long = "calling-ae", global = true, value_name = "AET")]
    pub calling_ae: Option<String>,
    /// More logs: -v association negotiation, -vv every DIMSE message and debug logs, -vvv trace.
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only (no warnings).
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    /// The subcommand to run.
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    /// A readable table per node.
    Table,
    /// One JSON array, one object per node.
    Json,
    /// A header line, then one row per node.
    Csv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CommitReportArg {
    /// On the association that carried the request.
    Same,
    /// On a new association to the requester.
    New,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindFormat {
    /// Aligned columns, in the order of the -k keys.
    Table,
    /// The DICOM JSON model (PS3.18 F.2): one array of objects.
    Json,
    /// A header line of keywords, then one row per match.
    Csv,
}

/// `--count`: a whole number of at least 1, said plainly.
fn at_least_one(s: &str) -> Result<u64, String> {
    let n: u64 = s.trim().parse().map_err(|_| format!("`{s}` is not a whole number"))?;
    if n == 0 {
        return Err("must be at least 1".to_string());
    }
    Ok(n)
}

/// `--concurrency`: 1 to 1024.
fn concurrency(s: &str) -> Result<u64, String> {
    let n = at_least_one(s)?;
    if n > 1024 {
        return Err("must be at most 1024".to_string());
    }
    Ok(n)
}

/// `--attempts`: 1 (no retry) to 100.
fn attempts(s: &str) -> Result<u32, String> {
    let n = at_least_one(s)?;
    u32::try_from(n)
        .ok()
        .filter(|n| *n <= 100)
        .ok_or_else(|| "must be at most 100".to_string())
}

/// Timeouts in milliseconds: 1 ms to 1 day.
fn millis(s: &str) -> Result<u64, String> {
    let n = at_least_one(s)?;
    if n > 86_400_000 {
        return Err("must be at most 86400000 (one day)".to_string());
    }
    Ok(n)
}

/// `--interval-seconds`: 0.05 s to one day.
#[cfg(feature = "monitor")]
fn interval_seconds(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.05..=86_400.0).contains(&x) {
        return Err("must be between 0.05 and 86400".to_string());
    }
    Ok(x)
}

/// `--timeout-seconds` of a storage commitment: 0.1 s to one day.
fn commit_seconds(s: &str) -> Result<f64, String> {
    let x: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !(0.1..=86_400.0).contains(&x) {
        return Err("must be between 0.1 and 86400".to_string());
    }
    Ok(x)
}

/// Options shared by every network command (echo, store, find).
#[derive(Debug, Args, Clone)]
pub struct RunOpts {
    /// Print pool and breaker statistics of each node used, at the end, on stderr.
    #[arg(long)]
    pub stats: bool,
    /// Format of --stats.
    #[arg(long = "stats-format", value_enum, default_value_t = StatsFormat::Table, value_name = "FORMAT")]
    pub stats_format: StatsFormat,
    /// Write the Prometheus text exposition of the run's metrics to FILE at the end.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
    /// Attempts per operation for this run (overrides the retry policy's max_attempts; 1 = no retry).
    #[arg(long, value_name = "N", value_parser = attempts)]
    pub attempts: Option<u32>,
    /// TCP connect timeout for this run, in milliseconds (overrides the node's connect_ms).
    #[arg(long = "connect-timeout-ms", value_name = "MS", value_parser = millis)]
    pub connect_timeout_ms: Option<u64>,
    /// Association negotiation (A-ASSOCIATE / A-RELEASE) timeout, in milliseconds (overrides acse_ms).
    #[arg(long = "acse-timeout-ms", value_name = "MS", value_parser = millis)]
    pub acse_timeout_ms: Option<u64>,
    /// Timeout for each DIMSE response, in milliseconds (overrides dimse_ms).
    #[arg(long = "dimse-timeout-ms", value_name = "MS", value_parser = millis)]
    pub dimse_timeout_ms: Option<u64>,
    #[command(flatten)]
    pub security: super::security::SecurityOpts,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// C-ECHO a node N times through its pool; prints a latency summary.
    #[command(after_help = "Example:\n  pacs-net echo ORTHANC@127.0.0.1:4242 --count 100 --concurrency 4\n\n".to_string() + NETWORK_HELP)]
    Echo {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Number of C-ECHOs to send (at least 1).
        #[arg(long, default_value_t = 1, value_name = "N", value_parser = at_least_one)]
        count: u64,
        /// C-ECHOs in flight at once (1 to 1024).
        #[arg(long, default_value_t = 1, value_name = "C", value_parser = concurrency)]
        concurrency: u64,
        #[command(flatten)]
        run: RunOpts,
    },
    /// C-STORE every DICOM file under the PATHs (directories are walked recursively;
    /// a DICOMDIR is skipped).
    #[command(after_help = "Examples:\n  pacs-net store ORTHANC@127.0.0.1:4242 /media/cdrom --report report.json\n  pacs-net -c hospital.json store MAIN_PACS ct/ mr/ --concurrency 4\n\n".to_string() + NETWORK_HELP)]
    Store {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Files or folders to send (folders are walked recursively).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Files sent at once, each on its own pooled association (1 to 1024).
        #[arg(long, default_value_t = 1, value_name = "C", value_parser = concurrency)]
        concurrency: u64,
        /// Write a JSON report of every file's outcome (checked before anything is sent).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// No progress bar, even on a terminal.
        #[arg(long = "no-progress")]
        no_progress: bool,
        #[command(flatten)]
        run: RunOpts,
        /// Then request storage commitment (N-ACTION) for the instances stored, and
        /// report each one's commitment; exit 0 only when every one is committed.
        #[arg(long)]
        commit: bool,
        /// With --commit: seconds to wait for the storage commitment report (default 60).
        #[arg(long = "commit-timeout-seconds", value_name = "S", value_parser = commit_seconds, requires = "commit")]
        commit_timeout_seconds: Option<f64>,
        /// With --commit: port to listen on for a report the PACS sends on a new
        /// association (default: the config's listener.port).
        #[arg(long, value_name = "P", requires = "commit")]
        port: Option<u16>,
    },
    /// C-FIND: query a node, print the matches.
    #[command(after_help = "Examples:\n  pacs-net find ORTHANC@127.0.0.1:4242 -k PatientID=PNT-0001 -k PatientName -k StudyDate\n  pacs-net find MAIN_PACS --model patient --level patient -k PatientName=DOE* -k PatientID\n  pacs-net find MAIN_PACS --level series -k StudyInstanceUID=1.2.3 -k Modality --format json\n\n".to_string() + NETWORK_HELP)]
    Find {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Query/Retrieve information model.
        #[arg(long, default_value = "study", value_parser = ["study", "patient"])]
        model: String,
        /// Query/Retrieve level (patient needs --model patient).
        #[arg(long, default_value = "study", value_parser = ["patient", "study", "series", "image"])]
        level: String,
        /// KEY[=VALUE]: a keyword (PatientName) or a tag (0010,0010); no value = return it.
        /// Columns are printed in the order of the keys.
        #[arg(short = 'k', long = "key", value_name = "KEY[=VALUE]")]
        keys: Vec<String>,
        /// Output format of the matches (stdout).
        #[arg(long, value_enum, default_value_t = FindFormat::Table, value_name = "FORMAT")]
        format: FindFormat,
        /// Stop after N matches (sends C-CANCEL).
        #[arg(long, value_name = "N", value_parser = at_least_one)]
        limit: Option<u64>,
        #[command(flatten)]
        run: RunOpts,
    },
    /// C-GET: the instances matching the keys come back on the same association
    /// (SCP role negotiated) and are written under DIR/<Study>/<Series>/<SOP>.dcm.
    #[command(after_help = "Examples:\n  pacs-net get ORTHANC@127.0.0.1:4242 -k StudyInstanceUID=1.2.3 --out study/\n  pacs-net get MAIN_PACS --level series -k StudyInstanceUID=1.2.3 -k SeriesInstanceUID=1.2.3.4 --out series/ --report get.json\n\nExit codes: 0 the final status is success or warning and no sub-operation failed, 1 a sub-operation or the retrieve failed or was cancelled, 2 usage or configuration error, 130 Ctrl-C.".to_string())]
    Get {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Query/Retrieve information model.
        #[arg(long, default_value = "study", value_parser = ["study", "patient"])]
        model: String,
        /// Query/Retrieve level (patient needs --model patient).
        #[arg(long, default_value = "study", value_parser = ["patient", "study", "series", "image"])]
        level: String,
        /// KEY=VALUE: what to retrieve, by keyword (StudyInstanceUID) or tag (0020,000D).
        #[arg(short = 'k', long = "key", value_name = "KEY=VALUE", required = true)]
        keys: Vec<String>,
        /// Where the instances are written (DIR/<Study>/<Series>/<SOP>.dcm).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Retrieve over C associations at once: the instances are listed first (C-FIND at
        /// IMAGE level) and fetched in parts by SOP Instance UID lists. 1: one retrieve
        /// with the keys as given.
        #[arg(long, default_value_t = 1, value_name = "C", value_parser = concurrency)]
        concurrency: u64,
        /// Write a JSON report of the retrieve (checked before anything is sent).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// No progress bar, even on a terminal.
        #[arg(long = "no-progress")]
        no_progress: bool,
        #[command(flatten)]
        run: RunOpts,
    },
    /// C-MOVE to --dest (default: our own AE title, then pacs-net listens on --port
    /// for the PACS's C-STOREs and writes them under --out DIR/<Study>/<Series>/).
    #[command(after_help = "Examples:\n  pacs-net move ORTHANC@127.0.0.1:4242 -k StudyInstanceUID=1.2.3 --out study/ --port 11113\n  pacs-net -c hospital.json move MAIN_PACS --dest WORKSTATION1 -k StudyInstanceUID=1.2.3\n\nA move to our own AE title needs the PACS to know that AE title's host and port (its\nmodality list). Exit codes: 0 the final status is success or warning and no sub-operation\nfailed, 1 a sub-operation or the retrieve failed or was cancelled, 2 usage or configuration\nerror, 130 Ctrl-C.".to_string())]
    Move {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Destination AE title (default: our own, --calling-ae or local_ae_title).
        #[arg(long, value_name = "AET")]
        dest: Option<String>,
        /// Query/Retrieve information model.
        #[arg(long, default_value = "study", value_parser = ["study", "patient"])]
        model: String,
        /// Query/Retrieve level (patient needs --model patient).
        #[arg(long, default_value = "study", value_parser = ["patient", "study", "series", "image"])]
        level: String,
        /// KEY=VALUE: what to retrieve, by keyword (StudyInstanceUID) or tag (0020,000D).
        #[arg(short = 'k', long = "key", value_name = "KEY=VALUE", required = true)]
        keys: Vec<String>,
        /// Where instances sent to our own AE are written (default: listener.storage_dir).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Port to listen on for the PACS's C-STOREs when the destination is our own AE
        /// (default: the config's listener.port).
        #[arg(long, value_name = "P")]
        port: Option<u16>,
        /// Retrieve over C associations at once: the instances are listed first (C-FIND at
        /// IMAGE level) and fetched in parts by SOP Instance UID lists. 1: one retrieve
        /// with the keys as given.
        #[arg(long, default_value_t = 1, value_name = "C", value_parser = concurrency)]
        concurrency: u64,
        /// Write a JSON report of the retrieve (checked before anything is sent).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// No progress bar, even on a terminal.
        #[arg(long = "no-progress")]
        no_progress: bool,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Storage Commitment (Push Model): ask the PACS to commit to keeping the instances
    /// in the files (read for their UIDs, not sent); the report comes on the same
    /// association or on a new one to our listener (--port).
    #[command(after_help = "Examples:\n  pacs-net commit ORTHANC@127.0.0.1:4242 study/ --port 11113 --report commit.json\n  pacs-net -c hospital.json commit MAIN_PACS study/ --timeout-seconds 120\n\nA report on a new association needs the PACS to know our AE title's host and port (its\nmodality list). Exit codes: 0 every instance committed, 1 any failed or unknown (no\nreport before the timeout), 2 usage or configuration error.".to_string())]
    Commit {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// Files or folders whose instances to commit (folders are walked recursively).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// Seconds to wait for the storage commitment report of each request.
        #[arg(long = "timeout-seconds", default_value = "60", value_name = "S", value_parser = commit_seconds)]
        timeout_seconds: f64,
        /// Port to listen on for a report the PACS sends on a new association
        /// (default: the config's listener.port; without either, only reports on the
        /// request's own association are taken).
        #[arg(long, value_name = "P")]
        port: Option<u16>,
        /// Write a JSON report of every instance's commitment (checked before anything is sent).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Modality Worklist C-FIND (1.2.840.10008.5.1.4.31): the scheduled procedure steps.
    #[command(after_help = "Examples:\n  pacs-net worklist RIS@10.0.0.5:104\n  pacs-net worklist RIS -k PatientName -k ScheduledProcedureStepSequence.Modality=CT -k ScheduledProcedureStepSequence.ScheduledProcedureStepStartDate=20261201-20261202\n  pacs-net worklist RIS -k ScheduledProcedureStepSequence.ScheduledStationAETitle=CT01 --format json\n\n".to_string() + NETWORK_HELP)]
    Worklist {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        /// KEY[=VALUE]: a keyword or a tag, dotted for an attribute of a sequence item
        /// (ScheduledProcedureStepSequence.Modality=CT); no value = return it. Without -k,
        /// the usual worklist keys.
        #[arg(short = 'k', long = "key", value_name = "KEY[=VALUE]")]
        keys: Vec<String>,
        /// Output format of the matches (stdout).
        #[arg(long, value_enum, default_value_t = FindFormat::Table, value_name = "FORMAT")]
        format: FindFormat,
        /// Stop after N matches (sends C-CANCEL).
        #[arg(long, value_name = "N", value_parser = at_least_one)]
        limit: Option<u64>,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Config file commands: check, schema.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the embedded SCP (Verification, Storage, C-FIND) until Ctrl-C.
    Scp {
        /// TCP port to listen on.
        #[arg(long, default_value_t = 11112)]
        port: u16,
        /// Our AE title as an SCP.
        #[arg(long = "ae-title", default_value = "PACSNET_SCP", value_name = "AET")]
        ae_title: String,
        /// Write received instances under DIR (default: keep them in memory).
        #[arg(long, value_name = "DIR")]
        storage: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1", value_name = "ADDR")]
        bind: String,
        /// Wait this long before every DIMSE response (a slow PACS; for tests and demos).
        #[arg(long = "response-delay-ms", value_name = "MS", hide = true)]
        response_delay_ms: Option<u64>,
        #[command(flatten)]
        tls: super::security::ScpTlsOpts,
        /// A C-MOVE destination the SCP knows: AET=HOST:PORT (repeatable); a C-MOVE to
        /// any other AE title is refused with A801 (move destination unknown).
        #[arg(long = "move-dest", value_name = "AET=HOST:PORT")]
        move_dest: Vec<String>,
        /// Where to send the report of a storage commitment request: on the same
        /// association, or on a new association to the requester (at its --move-dest
        /// address if listed, else its IP address and --commit-report-port).
        #[arg(long = "commit-report", value_enum, default_value_t = CommitReportArg::Same, value_name = "WHERE")]
        commit_report: CommitReportArg,
        /// With --commit-report new: the requester's port, for a requester not in --move-dest.
        #[arg(long = "commit-report-port", value_name = "P")]
        commit_report_port: Option<u16>,
        /// Answer Modality Worklist C-FINDs from the worklist files (DICOM files,
        /// any name, `.wl` as DCMTK writes them) found under DIR.
        #[arg(long, value_name = "DIR")]
        worklist: Option<PathBuf>,
    },
    /// Start the embedded SCP on a free loopback port and run echo, store and find
    /// against it through the pool.
    Demo,
    /// Watch every node of the config: a C-ECHO through each pool every S seconds,
    /// and /metrics, /health, /status and a status page at / until Ctrl-C.
    #[cfg(feature = "monitor")]
    #[command(
        after_help = "Example:\n  pacs-net -c hospital.json monitor --listen 0.0.0.0:9464 --interval-seconds 15"
    )]
    Monitor {
        /// Address and port to serve the endpoints on.
        #[arg(long, default_value = "127.0.0.1:9464", value_name = "ADDR:PORT")]
        listen: std::net::SocketAddr,
        /// Seconds between health checks (decimals allowed; 0.05 to 86400).
        #[arg(long = "interval-seconds", default_value = "30", value_name = "S", value_parser = interval_seconds)]
        interval_seconds: f64,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  pacs-net completions bash > /etc/bash_completion.d/pacs-net")]
    Completions {
        /// The shell to complete for.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config and print its nodes, pools, retry and breaker settings
    /// (exit 0, or 2 with the JSON path of the first error).
    Check {
        /// The config to check (default: -c FILE, or PACS_NET_CONFIG).
        file: Option<PathBuf>,
    },
    /// Print the JSON Schema of the hospital config (for editors to validate it).
    #[command(after_help = "Example:\n  pacs-net config schema > pacs-net.schema.json")]
    Schema,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// Every argument and option of every command has help text.
    #[test]
    fn every_argument_has_help() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || id == "help" || id == "version" {
                    continue;
                }
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {id}"));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() && sub.get_name() != "help" {
                    missing.push(format!("{path} {} (about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut missing = Vec::new();
        walk(&super::Cli::command(), "pacs-net", &mut missing);
        assert!(missing.is_empty(), "no help text: {missing:?}");
        super::Cli::command().debug_assert();
    }
}
