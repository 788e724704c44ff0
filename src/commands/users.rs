//! Reading given users by `GET /iam/users/{id}`, through the one engine
//! (rate, retries, pause, stops): the users a comparing run needs that the
//! account's list did not give whole, read before anything is sent.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;

use tokio::sync::{mpsc, watch};

use crate::engine::{self, Channels, Ended, Job, Work};
use crate::http::Client;
use crate::model::api::User;
use crate::operations::list::ReadUsers;
use crate::policy::SendPolicy;
use crate::signals::Interrupt;
use crate::sink::{Progress, ProgressMode, Report};

/// Reads each user of `ids` (each once) into `users`; a user that cannot
/// be read is left out (its row reads it again, and says why). `Err`:
/// the reading stopped (a signal, the account blocked), with why.
pub(super) async fn read_users(
    client: &Client,
    policy: &SendPolicy,
    ids: Vec<u64>,
    users: &mut HashMap<u64, User>,
    interrupt: &Interrupt,
    mode: ProgressMode,
) -> Result<(), String> {
    let (work_tx, work_rx) = mpsc::channel(1);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0u64);
    let (users_tx, users_rx) = std_mpsc::channel();
    let total = ids.len() as u64;
    let feeding = async move {
        for (at, chunk) in ids.chunks(256).enumerate() {
            let jobs = chunk
                .iter()
                .enumerate()
                .map(|(i, id)| {
                    let seq = (at * 256 + i) as u64;
                    Work::Send(Job::new(seq, seq + 1, *id, id.to_string(), String::new()))
                })
                .collect();
            if work_tx.send(jobs).await.is_err() {
                break;
            }
        }
    };
    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    let operation = ReadUsers { users: users_tx };
    let engine = {
        let (policy, client) = (policy.clone(), client.clone());
        let cancel = interrupt.clone().wait();
        tokio::spawn(async move {
            engine::dispatch(&policy, Some((operation, client)), channels, cancel).await
        })
    };
    // The reports on a thread of their own: the run's runtime has one
    // thread, and the engine needs it.
    let collecting = tokio::task::spawn_blocking(move || {
        let mut progress = Progress::counting(mode, total, "users");
        let mut done = 0;
        let mut read = Vec::new();
        for report in report_rx {
            match report {
                Report::Note(text) => progress.note(&text),
                Report::Attempt(text) => progress.attempt(&text),
                Report::Rate(_) | Report::Timeline(_) => {}
                Report::Row(_) => {
                    done += 1;
                    let _ = written_tx.send(done);
                    progress.advance(1);
                    read.extend(users_rx.try_iter());
                }
            }
        }
        read.extend(users_rx.try_iter());
        progress.finish();
        read
    });
    feeding.await;
    let read = collecting
        .await
        .expect("collecting the users does not panic");
    for (_, user) in read {
        if let Some(id) = user.id {
            users.insert(id, *user);
        }
    }
    match engine.await.expect("the engine does not panic") {
        Ended::Stopped(why) => Err(why.to_string()),
        Ended::Finished | Ended::SinkGone { .. } => Ok(()),
    }
}
