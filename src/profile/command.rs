//! Running a profile's `api_key_command`: in a process group of its own,
//! its output capped, its error output never shown, stopped with its
//! children on a timeout or a signal.

use std::io::Read as _;
use std::time::{Duration, Instant};

use crate::error::Fatal;

use super::*;

/// The signal that came while a key command ran (0: none).
pub(super) static SIGNALLED: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(0);

#[cfg(unix)]
extern "C" fn note_signal(signal: libc::c_int) {
    SIGNALLED.store(signal, std::sync::atomic::Ordering::SeqCst);
}

/// SIGINT and SIGTERM noted instead of acted on while it lives, and the
/// handlers before it put back after: the command's process group must be
/// stopped before this process ends.
#[cfg(unix)]
pub(super) struct NoteSignals {
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

#[cfg(unix)]
impl NoteSignals {
    fn install() -> NoteSignals {
        SIGNALLED.store(0, std::sync::atomic::Ordering::SeqCst);
        let mut previous = Vec::new();
        for signal in [libc::SIGINT, libc::SIGTERM] {
            // SAFETY: a zeroed sigaction is valid; the handler only stores
            // to an atomic, which is async-signal-safe.
            unsafe {
                let mut action: libc::sigaction = std::mem::zeroed();
                action.sa_sigaction = note_signal as *const () as libc::sighandler_t;
                libc::sigemptyset(&mut action.sa_mask);
                let mut old: libc::sigaction = std::mem::zeroed();
                if libc::sigaction(signal, &action, &mut old) == 0 {
                    previous.push((signal, old));
                }
            }
        }
        NoteSignals { previous }
    }
}

#[cfg(unix)]
impl Drop for NoteSignals {
    fn drop(&mut self) {
        for (signal, old) in &self.previous {
            // SAFETY: puts back the action read by `install`.
            unsafe {
                libc::sigaction(*signal, old, std::ptr::null_mut());
            }
        }
    }
}

/// Stops a command and every process it started in its group.
pub(super) fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // SAFETY: the child leads its own process group (`process_group(0)`),
        // so its id is the group's; it is not reaped yet, so the id is ours.
        unsafe {
            libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads at most `max` bytes of `from` on a thread of its own, then
/// discards the rest (so the command never blocks on a full pipe); says
/// whether there was more.
pub(super) fn read_capped(
    mut from: impl std::io::Read + Send + 'static,
    max: usize,
) -> std::sync::mpsc::Receiver<(Vec<u8>, bool)> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let _ = (&mut from).take(max as u64 + 1).read_to_end(&mut kept);
        let more = kept.len() > max;
        kept.truncate(max);
        // Sent at once when over the cap: the command is stopped then.
        if more {
            let _ = tx.send((kept, true));
            let _ = std::io::copy(&mut from, &mut std::io::sink());
        } else {
            let _ = tx.send((kept, false));
        }
    });
    rx
}

/// Runs a profile's `api_key_command` once and returns what it printed,
/// trimmed. With `sh -c`, standard input closed, in a process group of its
/// own, which is killed whole when the command takes longer than `timeout`,
/// prints more than [`MAX_KEY_OUTPUT`] bytes, or this process gets SIGINT
/// or SIGTERM. What it printed is never shown, nor its error output (which
/// may hold the key: `sh: 1: <a key>: not found` for a key pasted as the
/// command); only that there was some.
pub(crate) fn run_key_command(
    profile: &str,
    command: &str,
    timeout: Duration,
) -> Result<String, Fatal> {
    use std::process::{Command, Stdio};
    let named = match command_shown(command) {
        Some(shown) => format!("the api_key_command of profile {profile} ({shown})"),
        None => format!(
            "the api_key_command of profile {profile} (not shown: it does not start with a \
             program found on PATH, and may be a key pasted in the wrong place)"
        ),
    };
    let fail = |why: String| Fatal::Usage(format!("{named} {why}"));
    let mut sh = Command::new("sh");
    sh.arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        sh.process_group(0);
    }
    #[cfg(unix)]
    let signals = NoteSignals::install();
    let mut child = sh
        .spawn()
        .map_err(|error| fail(format!("could not start: {error}")))?;
    let stdout = read_capped(child.stdout.take().expect("piped"), MAX_KEY_OUTPUT);
    let stderr = read_capped(child.stderr.take().expect("piped"), MAX_KEY_OUTPUT);
    let deadline = Instant::now() + timeout;
    let (mut printed, mut status) = (None, None);
    // Polled, every 20 ms at most: the child's end, its output, the
    // deadline and a signal are four sources std cannot wait on at once.
    let stopped = loop {
        if printed.is_none() {
            match stdout.try_recv() {
                Ok((_, true)) => break Some(format!("printed more than {MAX_KEY_OUTPUT} bytes")),
                Ok(output) => printed = Some(output.0),
                Err(_) => {}
            }
        }
        if status.is_none() {
            status = child.try_wait().ok().flatten();
        }
        if let (Some(_), Some(_)) = (&printed, &status) {
            break None;
        }
        let signal = SIGNALLED.load(std::sync::atomic::Ordering::SeqCst);
        if signal != 0 {
            kill_group(&mut child);
            #[cfg(unix)]
            drop(signals);
            let signal = match signal {
                libc::SIGTERM => crate::exit::Signal::Terminate,
                _ => crate::exit::Signal::Interrupt,
            };
            crate::say!(
                "interrupted while the api_key_command of profile {profile} ran: it was \
                 stopped with the processes it started; nothing was sent"
            );
            std::process::exit(i32::from(
                crate::exit::Exit::of_run(Some(signal), false).code(),
            ));
        }
        if Instant::now() >= deadline {
            break Some(format!(
                "did not finish within {} s (api_key_command_timeout in the profile); it was \
                 stopped with the processes it started",
                timeout.as_secs_f64()
            ));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    if stopped.is_some() {
        kill_group(&mut child);
    }
    #[cfg(unix)]
    drop(signals);
    let printed = printed.unwrap_or_default();
    let errors = stderr
        .recv_timeout(Duration::from_millis(200))
        .map(|(bytes, _)| bytes)
        .unwrap_or_default();
    show_error_output(&errors);
    if let Some(why) = stopped {
        return Err(fail(why));
    }
    let status = status.expect("the loop ends with a status");
    if !status.success() {
        let how = match status.code() {
            Some(code) => format!("exited with {code}"),
            None => "was killed by a signal".to_string(),
        };
        return Err(fail(format!("{how}; run it yourself to see why")));
    }
    let text = String::from_utf8(printed)
        .map_err(|_| fail("printed something that is not UTF-8 text".to_string()))?;
    let key = text.trim();
    if key.is_empty() {
        return Err(fail("printed nothing".to_string()));
    }
    Ok(key.to_string())
}

/// The command's error output on stderr is not shown: it may hold the key
/// (a command that prints it there by mistake, or a shell that quotes a
/// key pasted as the command), and nothing can tell. Only that there was
/// some is said, and how to read it.
pub(super) fn show_error_output(errors: &[u8]) {
    if String::from_utf8_lossy(errors).trim().is_empty() {
        return;
    }
    crate::say!(
        "api_key_command: it wrote {} bytes to its error output, not shown here (they may hold \
         the key); run the command yourself to read them",
        errors.len()
    );
}
