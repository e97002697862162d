//! Colour on our own `error:` and `warning:` labels, like clap's: only when stderr
//! is a terminal, and never when `NO_COLOR` is set (<https://no-color.org>).

use std::io::IsTerminal;
use std::sync::OnceLock;

fn colour() -> bool {
    static ON: OnceLock<bool> = OnceLock::new();
    *ON.get_or_init(|| {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        !no_color && std::io::stderr().is_terminal()
    })
}

/// `error: `, bold red on a terminal.
pub(super) fn error_label() -> &'static str {
    if colour() {
        "\x1b[1;31merror:\x1b[0m "
    } else {
        "error: "
    }
}

/// `warning: `, bold yellow on a terminal.
pub(super) fn warning_label() -> &'static str {
    if colour() {
        "\x1b[1;33mwarning:\x1b[0m "
    } else {
        "warning: "
    }
}
