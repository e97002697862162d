//! Command-line arguments (the interface is fixed in the project spec).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "pacs-net",
    version,
    about = "Pooled, resilient DICOM C-ECHO / C-STORE / C-FIND",
    propagate_version = true
)]
pub struct Cli {
    /// Hospital JSON config.
    #[arg(
        short = 'c',
        long = "config",
        global = true,
        env = "PACS_NET_CONFIG",
        value_name = "FILE"
    )]
    pub config: Option<PathBuf>,
    /// Our own AE title (overrides the config's local_ae_title).
    #[arg(long = "calling-ae", global = true, value_name = "AET")]
    pub calling_ae: Option<String>,
    /// More logs (-v info, -vv debug, -vvv trace).
    #[arg(short = 'v', long = "verbose", action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    /// Errors only.
    #[arg(short = 'q', long = "quiet", global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Log line format.
    #[arg(long = "log-format", value_enum, default_value_t = LogFormat::Text, global = true)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum StatsFormat {
    Table,
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FindFormat {
    Table,
    Json,
    Csv,
}

/// Options shared by echo, store and find.
#[derive(Debug, Args, Clone)]
pub struct RunOpts {
    /// Print pool and breaker statistics of each node used, at the end.
    #[arg(long)]
    pub stats: bool,
    #[arg(long = "stats-format", value_enum, default_value_t = StatsFormat::Table)]
    pub stats_format: StatsFormat,
    /// Write the Prometheus text exposition of the run's metrics to FILE at the end.
    #[arg(long, value_name = "FILE")]
    pub metrics: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// C-ECHO a node N times through its pool.
    Echo {
        /// Node name from the config, or AET@HOST:PORT.
        target: String,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
        count: u64,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        concurrency: u64,
        #[command(flatten)]
        run: RunOpts,
    },
    /// C-STORE every DICOM file under the PATHs (directories are walked recursively).
    Store {
        target: String,
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1024))]
        concurrency: u64,
        /// Write a JSON report of every file's outcome.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// No progress bar, even on a terminal.
        #[arg(long = "no-progress")]
        no_progress: bool,
        #[command(flatten)]
        run: RunOpts,
    },
    /// C-FIND.
    Find {
        target: String,
        /// Query/Retrieve information model.
        #[arg(long, default_value = "study", value_parser = ["study", "patient"])]
        model: String,
        /// Query/Retrieve level.
        #[arg(long, default_value = "study", value_parser = ["patient", "study", "series", "image"])]
        level: String,
        /// KEY[=VALUE]: a keyword (PatientName) or a tag (0010,0010); no value = return it.
        #[arg(short = 'k', long = "key", value_name = "KEY[=VALUE]")]
        keys: Vec<String>,
        #[arg(long, value_enum, default_value_t = FindFormat::Table)]
        format: FindFormat,
        /// Stop after N matches (sends C-CANCEL).
        #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
        limit: Option<u64>,
        #[command(flatten)]
        run: RunOpts,
    },
    /// Config file commands.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Run the embedded SCP (Verification, Storage, C-FIND) until Ctrl-C.
    Scp {
        #[arg(long, default_value_t = 11112)]
        port: u16,
        #[arg(long = "ae-title", default_value = "PACSNET_SCP")]
        ae_title: String,
        /// Write received instances under DIR (default: keep them in memory).
        #[arg(long, value_name = "DIR")]
        storage: Option<PathBuf>,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1")]
        bind: String,
    },
    /// Start the embedded SCP on a free loopback port and run echo, store and find
    /// against it through the pool.
    Demo,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Validate a config and print its nodes, pools, retry and breaker settings.
    Check { file: PathBuf },
}
