//! Logs on stderr, through `tracing`, for people by default.
//!
//! | flags | what is shown |
//! |---|---|
//! | `-q` | library errors only |
//! | (none) | library errors and warnings, as `warning: message` (no module paths, no fields) |
//! | `-v` | warnings, and each association's negotiation (`pacs_net::negotiation=info`) |
//! | `-vv` | debug logs, each DIMSE message and PDU sizes (`pacs_net::dimse_trace=debug`) |
//! | `-vvv` | trace |
//!
//! `PACS_NET_LOG` (an `EnvFilter` directive) overrides the mapping. Patient data
//! never appears above `trace`.

use std::fmt;

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

use super::args::LogFormat;

/// The `EnvFilter` directives for a verbosity.
pub(super) fn directives(verbose: u8, quiet: bool) -> &'static str {
    if quiet {
        return "error";
    }
    match verbose {
        0 => "warn",
        1 => "warn,pacs_net::negotiation=info",
        2 => "info,pacs_net=debug,pacs_net::negotiation=info,pacs_net::dimse_trace=debug",
        _ => "trace",
    }
}

pub(super) fn init(verbose: u8, quiet: bool, format: LogFormat) {
    // dicom-parser warns of a Specific Character Set with code extensions
    // (`\ISO 2022 IR 87`), which dimse::charset then decodes: not the user's concern.
    let quiet_parser = if verbose < 3 {
        ",dicom_parser::stateful::decode=error"
    } else {
        ""
    };
    let filter = EnvFilter::try_from_env("PACS_NET_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("{}{quiet_parser}", directives(verbose, quiet))));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match (format, verbose) {
        (LogFormat::Json, _) => builder.json().try_init(),
        (LogFormat::Text, 0) => builder.event_format(ForPeople).try_init(),
        (LogFormat::Text, _) => builder.with_ansi(false).with_target(true).try_init(),
    };
}

/// `warning: the message`: the level as a word and the message alone.
struct ForPeople;

impl<S, N> FormatEvent<S, N> for ForPeople
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let label = match *event.metadata().level() {
            Level::ERROR => super::style::error_label(),
            Level::WARN => super::style::warning_label(),
            Level::INFO => "",
            _ => "debug: ",
        };
        let mut message = Message(String::new());
        event.record(&mut message);
        writeln!(writer, "{label}{}", message.0)
    }
}

struct Message(String);

impl tracing::field::Visit for Message {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        if field.name() == "message" {
            self.0 = value.to_string();
        }
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::directives;

    #[test]
    fn verbosity_maps_to_the_negotiation_and_dimse_trace_targets() {
        assert_eq!(directives(0, false), "warn");
        assert_eq!(directives(0, true), "error");
        let v = directives(1, false);
        assert!(
            v.contains("pacs_net::negotiation=info") && !v.contains("dimse_trace"),
            "{v}"
        );
        let vv = directives(2, false);
        assert!(
            vv.contains("pacs_net::negotiation=info")
                && vv.contains("pacs_net::dimse_trace=debug")
                && vv.contains("pacs_net=debug"),
            "{vv}"
        );
    }
}
