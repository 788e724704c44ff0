//! Running list reads through the engine: a job per page or per user,
//! what each answer holds collected in order, the progress counted.

use super::*;

/// What a read through the engine gave: each item with its job's user or
/// offset, the jobs that failed and why, and how the read ended.
pub(super) struct Fetched<T> {
    pub(super) items: Vec<(u64, T)>,
    pub(super) failed: Vec<(u64, String)>,
    pub(super) retries: u64,
    pub(super) throttled: u64,
    /// The account's limit the read met, if a 429 lowered its rate.
    pub(super) learned: Option<f64>,
    pub(super) ended: Ended,
}

/// Runs `jobs` (a user or a page each) through the engine
/// with `operation`, which hands what each answer holds to `items`.
#[expect(
    clippy::too_many_arguments,
    reason = "one private helper; its callers name each"
)]
pub(super) async fn fetch<O, T>(
    client: &Client,
    policy: &SendPolicy,
    operation: O,
    jobs: Vec<Subject>,
    items: std_mpsc::Receiver<(u64, T)>,
    weight: fn(&T) -> u64,
    interrupt: &Interrupt,
    progress: &mut Progress,
) -> Result<Fetched<T>, Fatal>
where
    O: Operation + 'static,
    T: Send + 'static,
{
    let (work_tx, work_rx) = mpsc::channel(1);
    let (report_tx, report_rx) = std_mpsc::channel();
    let (written_tx, written_rx) = watch::channel(0u64);
    let jobs: Vec<Work> = jobs
        .into_iter()
        .enumerate()
        .map(|(seq, subject)| {
            Work::Send(match subject {
                Subject::Row { row, user_id } => {
                    Job::new(seq as u64, row, user_id, user_id.to_string(), String::new())
                }
                Subject::Page { number, offset } => Job::page(seq as u64, number, offset),
            })
        })
        .collect();
    let _ = work_tx.send(jobs).await;
    drop(work_tx);
    let channels = Channels {
        work: work_rx,
        reports: report_tx,
        written: written_rx,
    };
    let policy = policy.clone();
    let client = client.clone();
    let cancel = interrupt.clone().wait();
    let engine = tokio::spawn(async move {
        engine::dispatch(&policy, Some((operation, client)), channels, cancel).await
    });
    // The outcomes, in any order: each item went to `items` first.
    let mut fetched = Fetched {
        items: Vec::new(),
        failed: Vec::new(),
        retries: 0,
        throttled: 0,
        learned: None,
        ended: Ended::Finished,
    };
    // The reports are read on a thread of their own: the run's runtime has
    // one thread, and the engine needs it. The progress display goes along.
    let mut shown = std::mem::replace(progress, Progress::counting(ProgressMode::Quiet, 0, ""));
    let collecting = tokio::task::spawn_blocking(move || {
        let mut done = 0;
        let mut rate = None;
        let progress = &mut shown;
        for report in report_rx {
            match report {
                Report::Note(text) => progress.note(&text),
                Report::Attempt(text) => progress.attempt(&text),
                // The list's rate is not shown (its summary is one line),
                // but the limit it met is remembered.
                Report::Rate(report) => rate = Some(report),
                Report::Timeline(_) => {}
                Report::Row(outcome) => {
                    done += 1;
                    let _ = written_tx.send(done);
                    fetched.retries += u64::from(outcome.retries);
                    fetched.throttled += u64::from(outcome.throttled);
                    if outcome.record.status != Status::UPDATED {
                        fetched.failed.push((
                            outcome.record.user_id.parse().unwrap_or_default(),
                            outcome.record.error,
                        ));
                    }
                    for (key, item) in items.try_iter() {
                        progress.advance(weight(&item));
                        fetched.items.push((key, item));
                    }
                }
            }
        }
        fetched.learned = rate.and_then(|rate| rate.learned(fetched.throttled));
        (fetched, shown)
    });
    let (mut fetched, shown) = collecting
        .await
        .expect("collecting the answers does not panic");
    *progress = shown;
    fetched.ended = engine.await.expect("the engine does not panic");
    Ok(fetched)
}
