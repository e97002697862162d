//! `pacs-net`: a thin binary over the library's CLI layer.
fn main() -> std::process::ExitCode {
    pacs_net::cli::main()
}
