//! `osbd`: parse, run, map the outcome to an exit code. All logic lives in the `osbd` library.

use clap::Parser;
use osbd::settings::Settings;
use osbd::{run, Cli};

// The data plane allocates per request; mimalloc halved the proxy's allocator time against glibc
// malloc (ADR 0107), and the proxy bench uses the same allocator so its figures are osbd's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("OSB_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let settings = Settings::from_env();
    let mut out = std::io::stdout();
    let mut err = std::io::stderr();
    if let Err(error) = run(cli, &settings, &mut out, &mut err).await {
        eprintln!("error: {error}");
        std::process::exit(error.exit_code());
    }
}
