//! `oc`: parse, run, exit with the command's code. All logic lives in the `osb_cli` library.

use std::io::IsTerminal;

use clap::Parser;
use osb_cli::{run, Io, OcCli};

fn main() {
    let cli = OcCli::parse();
    // Unlocked handles: the spinner draws on stderr from its own thread, so holding the stderr
    // lock here would stall it.
    let (mut stdin, mut stdout, mut stderr) =
        (std::io::stdin(), std::io::stdout(), std::io::stderr());
    let io = Io {
        stdin_is_terminal: stdin.is_terminal(),
        stderr_is_terminal: stderr.is_terminal(),
        stdin: &mut stdin,
        stdout: &mut stdout,
        stderr: &mut stderr,
    };
    std::process::exit(run(cli, io));
}
