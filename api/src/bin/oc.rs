//! `oc`: parse, run, print, exit with the command's code. All logic lives in `osb_api::oc`.

use clap::Parser;
use osb_api::oc::{finish, run, stdin_is_terminal, OcCli};

fn main() {
    let cli = OcCli::parse();
    let terminal = stdin_is_terminal();
    let outcome = run(cli, &mut std::io::stdin(), terminal);
    let code = finish(outcome, &mut std::io::stdout(), &mut std::io::stderr());
    std::process::exit(code);
}
