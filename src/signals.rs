//! Ctrl-C and SIGTERM. The handlers are installed before the first row is
//! read, so a signal at any moment ends the run the same way: nothing new is
//! sent, and the results file and summary are still complete, and the exit
//! code says which signal it was. A second Ctrl-C quits at once with
//! [`Exit::Aborted`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::sync::watch;

use crate::exit::{Exit, Signal};

/// Whether the run was asked to stop, and by which signal. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Interrupt {
    stopped: watch::Receiver<Option<Signal>>,
    /// While set, a signal ends the process at once: the input is still
    /// being read (a pipe may never end), nothing has been sent and no
    /// results file exists yet.
    reading: Arc<AtomicBool>,
}

impl Interrupt {
    /// Installs the handlers now, on the current tokio runtime. Where the
    /// operating system refuses them, the run simply goes to its end.
    pub fn install() -> Interrupt {
        Interrupt::install_saying("--resume goes on from it")
    }

    /// [`Interrupt::install`], with what a second Ctrl-C says finishes the
    /// run (`apply --plan`: the plan applied again, not `--resume`).
    pub fn install_saying(next: &'static str) -> Interrupt {
        let (tx, stopped) = watch::channel(None);
        let reading = Arc::new(AtomicBool::new(false));
        match Handlers::register() {
            Ok(mut handlers) => {
                let reading = Arc::clone(&reading);
                tokio::spawn(async move {
                    let signal = handlers.first().await;
                    if reading.load(Ordering::SeqCst) {
                        crate::say!(
                            "interrupted while the input was still being read: nothing was sent \
                             and no results file was written"
                        );
                        std::process::exit(i32::from(Exit::of_run(Some(signal), false).code()));
                    }
                    let _ = tx.send(Some(signal));
                    handlers.second_interrupt().await;
                    crate::say!(
                        "interrupted again: quitting; the results file may lack the last \
                         rows (in flight, or answered in the last tenth of a second): \
                         {next}; no summary file or report is written"
                    );
                    std::process::exit(i32::from(Exit::Aborted.code()));
                });
            }
            Err(_) => drop(tx),
        }
        Interrupt { stopped, reading }
    }

    /// An interrupt that never comes: no handler is installed (tests).
    #[cfg(test)]
    pub(crate) fn never() -> Interrupt {
        let (_, stopped) = watch::channel(None);
        Interrupt {
            stopped,
            reading: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Says whether the input is being read (see [`Interrupt`]).
    pub(crate) fn reading_input(&self, reading: bool) {
        self.reading.store(reading, Ordering::SeqCst);
    }

    /// The signal that came, if one did.
    pub fn signal(&self) -> Option<Signal> {
        *self.stopped.borrow()
    }

    /// Completes on the first Ctrl-C or SIGTERM (at once if one came already).
    pub async fn wait(mut self) {
        if self.stopped.wait_for(Option::is_some).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(unix)]
struct Handlers {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl Handlers {
    /// `signal` installs the handler when called, not when first polled.
    fn register() -> std::io::Result<Handlers> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Handlers {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Ctrl-C, or SIGTERM (cron's timeout, systemd, `kill`).
    async fn first(&mut self) -> Signal {
        tokio::select! {
            _ = self.interrupt.recv() => Signal::Interrupt,
            _ = self.terminate.recv() => Signal::Terminate,
        }
    }

    async fn second_interrupt(&mut self) {
        self.interrupt.recv().await;
    }
}

#[cfg(not(unix))]
struct Handlers;

#[cfg(not(unix))]
impl Handlers {
    fn register() -> std::io::Result<Handlers> {
        Ok(Handlers)
    }

    async fn first(&mut self) -> Signal {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        Signal::Interrupt
    }

    async fn second_interrupt(&mut self) {
        self.first().await;
    }
}
