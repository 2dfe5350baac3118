//! The hidden prompt of `oc secret set` when stdin is a terminal: the prompt goes to stderr, echo
//! is turned off while the value is typed (and turned back on even when reading fails), and the
//! line is returned without its newline. It must never echo, print or log the value.

use std::io::{Read, Write};

use nix::sys::termios::{tcgetattr, tcsetattr, LocalFlags, SetArg, Termios};

/// Restores the terminal's settings when dropped.
struct EchoOff {
    original: Termios,
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &self.original);
    }
}

/// Prints `prompt` on `err`, reads one line from `input` (the terminal on stdin) with echo off.
pub(crate) fn read_hidden(
    prompt: &str,
    input: &mut dyn Read,
    err: &mut dyn Write,
) -> std::io::Result<String> {
    let original = tcgetattr(std::io::stdin())?;
    let mut hidden = original.clone();
    hidden.local_flags.remove(LocalFlags::ECHO);
    // Still echo the newline, so what follows starts on its own line.
    hidden.local_flags.insert(LocalFlags::ECHONL);
    write!(err, "{prompt}")?;
    err.flush()?;
    tcsetattr(std::io::stdin(), SetArg::TCSANOW, &hidden)?;
    let guard = EchoOff { original };
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 || byte[0] == b'\n' {
            break;
        }
        line.push(byte[0]);
    }
    drop(guard);
    if line.last() == Some(&b'\r') {
        line.pop();
    }
    String::from_utf8(line)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "the value is not UTF-8"))
}
