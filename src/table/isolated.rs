//! A workbook is read in a child process of this same program, under a
//! bound of memory and of processor time, so that a file the reader cannot
//! be trusted with ends the child and not the run.
//!
//! calamine sets memory aside by numbers a forged file chooses, follows
//! formulas by recursion and builds some texts in quadratic time; a failed
//! allocation aborts a process and a stack overflow cannot be caught. The
//! checks in front of it ([`super::zipped`], [`super::binary`]) refuse
//! what they know with a precise message; the child is the bound for
//! everything else: it is started with `RLIMIT_AS` and `RLIMIT_CPU` set
//! ([`limits`]), is killed if the run ends first (`PR_SET_PDEATHSIG`), and
//! when it stops any other way than with its answer the file is refused.
//!
//! The child reads the workbook on its standard input (a copy of the run's
//! private spool), writes the sheet as CSV on its standard output (the
//! run's next spool) and its [`SheetRead`] as JSON on its standard error.
//! `main` turns isolation on ([`isolate_in`]); a program that uses the
//! library without it (the tests that call it in-process) reads in-process.

use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::{Arc, OnceLock};

use super::sheet::{self, SheetRead};
use super::spool::Spool;
use super::zipped::show_size;

/// The first argument that makes this program the reader.
pub(crate) const CHILD_ARG: &str = "__read-workbook";

/// The program to start as the reader, once `main` has said.
static PROGRAM: OnceLock<PathBuf> = OnceLock::new();

/// Reads workbooks in a child process of `program` (this program) from now
/// on.
pub fn isolate_in(program: PathBuf) {
    let _ = PROGRAM.set(program);
}

/// The bounds of the reader of a file of a given size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Address space, bytes: 2 GiB and 100 times the file's size, at most
    /// 64 GiB (a 30 MB workbook of a million rows takes about 1.6 GB).
    pub memory: u64,
    /// Processor time, seconds: 30 and 10 for each MiB of the file.
    pub seconds: u64,
}

/// [`Limits`] for a file of `file_len` bytes.
pub fn limits(file_len: u64) -> Limits {
    Limits {
        memory: (2u64 << 30)
            .saturating_add(file_len.saturating_mul(100))
            .min(64 << 30),
        seconds: 30 + file_len.div_ceil(1 << 20).saturating_mul(10),
    }
}

/// The child's side: `Some` exit code when this process was started as
/// the reader (`main` returns it at once), `None` otherwise.
pub fn child_main() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != CHILD_ARG {
        return None;
    }
    let wanted = args.next().map(|name| name.to_string_lossy().into_owned());
    let mut bytes = Vec::new();
    if io::stdin().lock().read_to_end(&mut bytes).is_err() {
        return Some(ExitCode::from(3));
    }
    let read = in_this_process(Arc::from(bytes), wanted.as_deref(), io::stdout().lock());
    let json = serde_json::to_vec(&read).unwrap_or_default();
    let written = io::stderr().lock().write_all(&json);
    Some(ExitCode::from(if written.is_ok() { 0 } else { 3 }))
}

/// Reads the workbook in `input` (its bytes also in `bytes`) and writes
/// the sheet `wanted` (or the first of users) to `out` as CSV: in a child
/// process under [`limits`] once [`isolate_in`] was called, in this one
/// otherwise. The error is a sentence for the user.
pub fn convert(
    input: &Spool,
    bytes: Arc<[u8]>,
    wanted: Option<&str>,
    out: &mut Spool,
) -> Result<SheetRead, String> {
    #[cfg(unix)]
    if let Some(program) = PROGRAM.get() {
        return in_child(program, input, bytes.len() as u64, wanted, out);
    }
    let _ = input;
    in_this_process(bytes, wanted, out.writer())
}

/// The reading itself, in the process that calls it (the child, or a run
/// without isolation): the record checks, then calamine.
fn in_this_process(
    bytes: Arc<[u8]>,
    wanted: Option<&str>,
    out: impl Write,
) -> Result<SheetRead, String> {
    super::binary::check(&bytes)?;
    sheet::convert_guarded(io::Cursor::new(bytes), wanted, io::BufWriter::new(out))
}

#[cfg(unix)]
fn in_child(
    program: &std::path::Path,
    input: &Spool,
    file_len: u64,
    wanted: Option<&str>,
    out: &mut Spool,
) -> Result<SheetRead, String> {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    let failed = |error: io::Error| format!("cannot start the workbook reader: {error}");
    let mut stdin = input.file().try_clone().map_err(failed)?;
    stdin.seek(SeekFrom::Start(0)).map_err(failed)?;
    let stdout = out.file().try_clone().map_err(failed)?;
    let bounds = limits(file_len);
    let mut command = Command::new(program);
    command
        .arg(CHILD_ARG)
        .args(wanted)
        .env_remove(crate::environment::API_KEY_ENV)
        .stdin(Stdio::from(stdin))
        .stdout(Stdio::from(stdout))
        .stderr(Stdio::piped());
    // SAFETY: between fork and exec only async-signal-safe calls are made
    // (getrlimit, setrlimit, prctl), on values copied in beforehand.
    unsafe {
        command.pre_exec(move || bound_this_process(bounds));
    }
    let mut child = command.spawn().map_err(failed)?;
    // The answer is read by a thread of its own, at most half the child's
    // memory bound; the child is killed when the answer is longer, cannot
    // be held, or does not end within twice the processor time (a child
    // blocked on a full pipe uses none).
    let mut stderr = child.stderr.take().expect("piped");
    let cap = bounds.memory / 2;
    let (sender, answered) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut answer = Vec::new();
        let read = (&mut stderr).take(cap + 1).read_to_end(&mut answer);
        let _ = sender.send(read.map(|_| answer));
    });
    let wall = std::time::Duration::from_secs(bounds.seconds.saturating_mul(2) + 30);
    let (answer, cut) = match answered.recv_timeout(wall) {
        Ok(Ok(answer)) if answer.len() as u64 <= cap => (Some(answer), None),
        Ok(Ok(_)) => (
            None,
            Some(format!("its answer took more than {}", show_size(cap))),
        ),
        Ok(Err(_)) => (None, Some("this run could not hold its answer".to_string())),
        Err(_) => (
            None,
            Some(format!("it did not end within {} s", wall.as_secs())),
        ),
    };
    if cut.is_some() {
        let _ = child.kill();
    }
    let status = child.wait().map_err(failed)?;
    let parsed = match (answer, status.success()) {
        (Some(answer), true) => serde_json::from_slice::<Result<SheetRead, String>>(&answer).ok(),
        _ => None,
    };
    parsed.unwrap_or_else(|| {
        let memory = bounds.memory.min(current_memory_limit());
        Err(format!(
            "the workbook reader stopped on it ({}): reading it took more than its bound of {} \
             of memory or {} s of processor time, or met a structure it cannot read (a damaged \
             or forged file, or a sheet too large to read this way); open it in a spreadsheet \
             and save it again as .xlsx, or as CSV UTF-8",
            cut.unwrap_or_else(|| describe(status)),
            show_size(memory),
            bounds.seconds
        ))
    })
}

/// This process's own soft bound on its address space (a `ulimit -v`),
/// which the child inherits when it is below the reader's.
#[cfg(unix)]
fn current_memory_limit() -> u64 {
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a plain system call on a local value.
    match unsafe { libc::getrlimit(libc::RLIMIT_AS, &mut current) } {
        0 => current.rlim_cur,
        _ => u64::MAX,
    }
}

/// How the child ended, in words.
#[cfg(unix)]
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (_, Some(libc::SIGXCPU)) => "out of processor time".to_string(),
        (_, Some(libc::SIGKILL)) => "killed".to_string(),
        (_, Some(libc::SIGABRT)) => "aborted".to_string(),
        (_, Some(libc::SIGSEGV)) => "stack overflow or bad memory access".to_string(),
        (_, Some(signal)) => format!("signal {signal}"),
        (Some(code), _) => format!("exit {code}"),
        (None, None) => "unknown end".to_string(),
    }
}

/// Sets the reader's bounds on the calling process (the child, before it
/// runs the program), never above the bounds it already has; and has it
/// killed when the run ends first.
#[cfg(unix)]
fn bound_this_process(bounds: Limits) -> io::Result<()> {
    let set = |resource, soft: u64, hard: u64| -> io::Result<()> {
        let mut current = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: a plain system call on a local value.
        if unsafe { libc::getrlimit(resource, &mut current) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // Never above what the run was given (a `ulimit` of the user's).
        let wanted = libc::rlimit {
            rlim_cur: (soft as libc::rlim_t)
                .min(current.rlim_cur)
                .min(current.rlim_max),
            rlim_max: (hard as libc::rlim_t).min(current.rlim_max),
        };
        // SAFETY: a plain system call on a local value.
        if unsafe { libc::setrlimit(resource, &wanted) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    };
    set(libc::RLIMIT_AS, bounds.memory, bounds.memory)?;
    set(libc::RLIMIT_CPU, bounds.seconds, bounds.seconds + 5)?;
    #[cfg(target_os = "linux")]
    // SAFETY: a plain system call.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_grow_with_the_file_and_stop() {
        assert_eq!(
            limits(0),
            Limits {
                memory: 2 << 30,
                seconds: 30
            }
        );
        let thirty = limits(30 << 20);
        assert_eq!(thirty.memory, (2 << 30) + 3000 * (1 << 20));
        assert_eq!(thirty.seconds, 330);
        assert_eq!(limits(u64::MAX).memory, 64 << 30);
    }
}
