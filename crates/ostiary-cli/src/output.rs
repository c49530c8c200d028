//! Standard output, for every command: [`out!`] writes one line through [`line`].
//!
//! `println!` panics when its reader has gone (`ostiary session list | head -1` closes the pipe
//! after one line; the next write fails with `EPIPE`), which ends the process with status 101
//! and a panic message. Here that failure is [`Closed`], an error that `main` turns into a
//! quiet exit with status 0, as Unix tools do; the command's destructors still run. The crate
//! denies `clippy::print_stdout` and `clippy::print_stderr`, so every command goes through
//! this module.

use std::fmt;
use std::io::Write as _;

/// Standard output was closed by its reader: the command stops, successfully and quietly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

impl fmt::Display for Closed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("standard output was closed")
    }
}

impl std::error::Error for Closed {}

/// Writes `args` and a newline to standard output, flushed. A closed pipe is [`Closed`];
/// another failure (a full disk) is an error that says so.
pub fn line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    let written = stdout
        .write_fmt(args)
        .and_then(|()| stdout.write_all(b"\n"))
        .and_then(|()| stdout.flush());
    match written {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(Closed.into()),
        Err(e) => Err(anyhow::anyhow!("cannot write to standard output: {e}")),
    }
}

/// Whether `error` is, or was caused by, a closed standard output.
pub fn is_closed(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| cause.is::<Closed>())
}

/// Writes an error message to standard error. If that fails too there is no one left to tell,
/// so it is ignored rather than a panic.
pub fn error(error: &anyhow::Error) {
    let _ = writeln!(std::io::stderr().lock(), "error: {error:#}");
}

/// `out!("format", args…)`: one line on standard output, as `println!` but returning
/// `anyhow::Result<()>` ([`Closed`] when the reader has gone).
macro_rules! out {
    () => {
        $crate::output::line(format_args!(""))
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))
    };
}
