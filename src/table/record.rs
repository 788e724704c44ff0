//! The record of a run on disk: the results file, written in input order,
//! and its journal beside it (`<results>.journal`). Every tenth of a second
//! the rows answered but still waiting for their turn in the results file
//! (a row before them is still in flight or waiting for a retry) are
//! appended to the journal, and both files are handed to the operating
//! system, so a crash (`kill -9`) loses at most the answers of that last
//! tenth of a second. A resumed run writes its new results file beside the
//! old one until the end, so it journals every answer as it arrives.
//! `apply --resume` reads both. [`OutputTarget`] says where the results go.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::results::{
    Columns, Kind, RecordReader, RecordWriter, ResultRecord, Status, ends_with_newline, read_at,
};

/// Where the results file goes: standard output or a file (`settings`
/// builds it from `-o`; the sink writes there).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    Stdout,
    File(PathBuf),
}

impl OutputTarget {
    /// Whether the results go to a terminal (`-o -` without a redirection).
    pub(crate) fn on_terminal(&self) -> bool {
        use std::io::IsTerminal;
        matches!(self, OutputTarget::Stdout) && std::io::stdout().is_terminal()
    }

    pub(crate) fn display_path(&self) -> PathBuf {
        match self {
            OutputTarget::Stdout => PathBuf::from("<stdout>"),
            OutputTarget::File(path) => path.clone(),
        }
    }
}

/// The journal's path: the results file's, with `.journal` added.
pub(crate) fn journal_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_os_string();
    name.push(".journal");
    PathBuf::from(name)
}

/// `<results>.account`: which account the run that wrote the results file
/// talked to, so that a resume with another account is refused.
pub(crate) fn account_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_os_string();
    name.push(".account");
    PathBuf::from(name)
}

/// The account of a run: its API's address (`https://api.gcore.com`) and
/// its key. The key is kept only as an HMAC-SHA256 of it under a random
/// salt written beside it: enough to tell the same key again, nothing to
/// recover it from.
pub(crate) struct Account<'a> {
    pub url: &'a str,
    pub key: &'a str,
}

/// How a resumed record's account compares with this run's.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SameAccount {
    /// The record says nothing (written before this was kept, or by a
    /// rehearsal).
    Unknown,
    Same,
    /// Another address: the record's.
    OtherUrl(String),
    /// The same address, another key.
    OtherKey,
}

fn mac(salt: &[u8], key: &str) -> String {
    let salted = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, salt);
    hex(ring::hmac::sign(&salted, key_bytes(key)).as_ref())
}

fn key_bytes(key: &str) -> &[u8] {
    key.trim().as_bytes()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Account<'_> {
    /// Writes the record's account file (readable by its owner only).
    pub(crate) fn mark(&self, results: &Path) -> io::Result<()> {
        use ring::rand::SecureRandom;
        use std::io::Write;
        let mut salt = [0u8; 16];
        ring::rand::SystemRandom::new()
            .fill(&mut salt)
            .map_err(|_| io::Error::other("no random numbers for the salt"))?;
        let mut file = open_private(&account_path(results))?;
        file.set_len(0)?;
        writeln!(file, "url {}", self.url)?;
        writeln!(file, "key {} {}", hex(&salt), mac(&salt, self.key))?;
        file.sync_all()
    }

    /// Compares with the account the record at `results` keeps.
    pub(crate) fn compare(&self, results: &Path) -> io::Result<SameAccount> {
        use std::io::Read;
        let file = match File::open(account_path(results)) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(SameAccount::Unknown);
            }
            Err(error) => return Err(error),
        };
        let mut text = String::new();
        file.take(64 << 10).read_to_string(&mut text)?;
        let mut url = None;
        let mut key = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("url", value)) => url = Some(value.to_string()),
                Some(("key", value)) => key = value.split_once(' '),
                _ => {}
            }
        }
        let (Some(url), Some((salt, kept))) = (url, key) else {
            return Ok(SameAccount::Unknown);
        };
        if url != self.url {
            return Ok(SameAccount::OtherUrl(url));
        }
        let salt: Option<Vec<u8>> = (0..salt.len())
            .step_by(2)
            .map(|at| u8::from_str_radix(salt.get(at..at + 2)?, 16).ok())
            .collect();
        Ok(match salt {
            Some(salt) if mac(&salt, self.key) == kept => SameAccount::Same,
            _ => SameAccount::OtherKey,
        })
    }
}

/// Opens a file for reading and writing, creating it readable by its owner
/// only (the files of a run hold people's e-mail addresses and phone
/// numbers); an existing file keeps its permissions. Never truncated here.
pub(crate) fn open_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// The journal of a run that sends.
pub(crate) struct Journal {
    writer: RecordWriter<File>,
    path: PathBuf,
}

impl Journal {
    /// Opens the journal beside `results`: `append` goes on after what an
    /// earlier run wrote (cutting off a last line that a crash left half
    /// written); otherwise the journal starts empty.
    pub(crate) fn open(results: &Path, append: bool) -> io::Result<Journal> {
        let path = journal_path(results);
        let mut file = open_private(&path)?;
        if !append {
            file.set_len(0)?;
        } else if !ends_with_newline(&mut file)? {
            let whole = last_line_break(&mut file)?.map_or(0, |at| at + 1);
            file.set_len(whole)?;
        }
        let length = file.seek(SeekFrom::End(0))?;
        let mut writer = if length == 0 {
            RecordWriter::new(file)?
        } else {
            RecordWriter::continuing(file)
        };
        writer.flush()?;
        Ok(Journal { writer, path })
    }

    pub(crate) fn append(&mut self, record: &ResultRecord) -> io::Result<()> {
        self.writer.write(record)
    }

    /// Hands what is buffered to the operating system (the results writer
    /// does so every tenth of a second, with the results file).
    pub(crate) fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }

    /// Once the results file holds every row for good: the journal is done.
    pub(crate) fn remove(mut self) -> io::Result<()> {
        self.writer.flush()?;
        std::fs::remove_file(&self.path)
    }
}

/// The offset of the last line break of `file`, reading back from the end.
pub(crate) fn last_line_break(file: &mut File) -> io::Result<Option<u64>> {
    const CHUNK: u64 = 64 * 1024;
    let mut end = file.seek(SeekFrom::End(0))?;
    let mut buffer = vec![0u8; CHUNK as usize];
    while end > 0 {
        let start = end.saturating_sub(CHUNK);
        let length = (end - start) as usize;
        file.seek(SeekFrom::Start(start))?;
        file.read_exact(&mut buffer[..length])?;
        if let Some(at) = memchr::memrchr(b'\n', &buffer[..length]) {
            return Ok(Some(start + at as u64));
        }
        end = start;
    }
    Ok(None)
}

/// What a file about to be replaced by a results file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Existing {
    /// No file, or an empty one.
    Nothing,
    /// The results of a dry run: nothing was sent, nothing to lose.
    DryRun,
    /// A plan: users were read, nothing was changed.
    Plan,
    /// The record of a run that sent requests: the only account of what it changed.
    Sent,
    /// Not a results file of this tool (the reason).
    Foreign(String),
}

/// Reads enough of `path` to say what it holds.
/// `statuses`: the words of the command's operation besides every run's
/// (a results file with them is this tool's).
pub fn existing(path: &Path, statuses: &'static [Status]) -> Existing {
    // A journal with rows is the record of a run that sent requests (one
    // killed before its results file caught up), whatever the file says.
    let journal = journal_path(path);
    if std::fs::metadata(&journal).is_ok_and(|m| m.len() > 0)
        && let Ok(reader) = RecordReader::open(&journal)
        && reader.with_statuses(statuses).next_record().is_some()
    {
        return Existing::Sent;
    }
    if !std::fs::metadata(path).is_ok_and(|m| m.len() > 0) {
        return Existing::Nothing;
    }
    let mut reader = match RecordReader::open(path) {
        Ok(reader) => reader.with_statuses(statuses),
        Err(error) => return Existing::Foreign(error.to_string()),
    };
    if reader.is_plan() {
        return Existing::Plan;
    }
    while let Some(record) = reader.next_record() {
        match record {
            Ok(record) if record.attempts > 0 => return Existing::Sent,
            Ok(_) => {}
            Err(error) => return Existing::Foreign(error),
        }
    }
    Existing::DryRun
}

/// What an earlier run recorded: its results file and its journal, looked
/// up row by row. Memory: 16 bytes per row in the journal, for its index.
pub struct Previous {
    results: PathBuf,
    journal: Option<(PathBuf, Columns, HashMap<u64, u64>)>,
    /// The rows the journal holds, in order.
    journal_rows: Vec<u64>,
    /// The status words of the run's operation besides every run's.
    statuses: &'static [Status],
}

impl Previous {
    /// The record at `results` and its journal; `None` when there is
    /// neither (a resume with nothing to resume is a fresh run).
    /// `statuses`: the words of the run's operation besides every run's.
    pub fn open(results: &Path, statuses: &'static [Status]) -> io::Result<Option<Previous>> {
        let journal_path = journal_path(results);
        // A file a killed run created but wrote nothing to says nothing.
        let holds_records = |path: &Path| std::fs::metadata(path).is_ok_and(|m| m.len() > 0);
        if !holds_records(results) && !holds_records(&journal_path) {
            return Ok(None);
        }
        // A reviewed plan named as the record would be replaced by the
        // results (`apply users.csv --resume -o users.plan.csv`).
        if holds_records(results) && RecordReader::open(results)?.is_plan() {
            return Err(invalid(
                results,
                "it is a plan (written by plan, applied with apply --plan), not the record \
                 of a run: --resume names the results file of the run it goes on from; the \
                 plan is left as it is"
                    .to_string(),
            ));
        }
        let journal = if holds_records(&journal_path) {
            let mut reader = RecordReader::open(&journal_path)?.with_statuses(statuses);
            let mut index = HashMap::new();
            while let Some((offset, record)) = reader.next_entry() {
                let record = record.map_err(|error| invalid(&journal_path, error))?;
                // A later entry for the same row is the newer answer.
                index.insert(record.row, offset);
            }
            Some((journal_path, reader.columns(), index))
        } else {
            None
        };
        let mut journal_rows: Vec<u64> = journal
            .as_ref()
            .map(|(_, _, index)| index.keys().copied().collect())
            .unwrap_or_default();
        journal_rows.sort_unstable();
        Ok(Some(Previous {
            results: results.to_path_buf(),
            journal,
            journal_rows,
            statuses,
        }))
    }

    /// The results file this record is of.
    pub fn path(&self) -> &Path {
        &self.results
    }

    /// A pass over the record, for rows asked in increasing order.
    pub(crate) fn cursor(&self) -> io::Result<Cursor<'_>> {
        let results = if std::fs::metadata(&self.results).is_ok_and(|m| m.len() > 0) {
            Some(RecordReader::open(&self.results)?.with_statuses(self.statuses))
        } else {
            None
        };
        let journal = match &self.journal {
            Some((path, _, _)) => Some(File::open(path)?),
            None => None,
        };
        Ok(Cursor {
            previous: self,
            results,
            ahead: None,
            journal,
            journal_at: 0,
            missing: None,
            last_read: 0,
        })
    }
}

fn invalid(path: &Path, error: String) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {error}", path.display()),
    )
}

/// One pass over an earlier run's record.
pub struct Cursor<'a> {
    previous: &'a Previous,
    results: Option<RecordReader<BufReader<File>>>,
    /// The next record of the results file, read ahead.
    ahead: Option<ResultRecord>,
    journal: Option<File>,
    /// How far the input has come in the journal's rows.
    journal_at: usize,
    /// The first row recorded as updated that the input went past.
    missing: Option<u64>,
    /// The row of the results file's last record read: each must be later.
    last_read: u64,
}

impl Cursor<'_> {
    /// What the earlier run recorded for `row`: the journal's newest entry,
    /// else the results file's. Rows must be asked in increasing order;
    /// rows passed over are checked: see [`Cursor::missing_updated`].
    pub fn take(&mut self, row: u64) -> io::Result<Option<ResultRecord>> {
        let from_results = self.in_results(row)?;
        let rows = &self.previous.journal_rows;
        while self.journal_at < rows.len() && rows[self.journal_at] < row {
            let passed = rows[self.journal_at];
            self.journal_at += 1;
            if self
                .journal_entry(passed)?
                .is_some_and(|r| r.status.kind() == Kind::Changed)
            {
                self.missing.get_or_insert(passed);
            }
        }
        if rows.get(self.journal_at) == Some(&row) {
            self.journal_at += 1;
            if let Some(record) = self.journal_entry(row)? {
                return Ok(Some(record));
            }
        }
        Ok(from_results)
    }

    /// After the last row of the input: the first row the earlier run
    /// updated that the input no longer has (removed, or now blank).
    pub(crate) fn missing_updated(&mut self) -> io::Result<Option<u64>> {
        self.take(u64::MAX)?;
        Ok(self.missing)
    }

    fn journal_entry(&mut self, row: u64) -> io::Result<Option<ResultRecord>> {
        let (Some(file), Some((path, columns, index))) =
            (&mut self.journal, &self.previous.journal)
        else {
            return Ok(None);
        };
        let Some(offset) = index.get(&row) else {
            return Ok(None);
        };
        read_at(file, *offset, columns)
            .map(Some)
            .map_err(|error| invalid(path, error.to_string()))
    }

    fn in_results(&mut self, row: u64) -> io::Result<Option<ResultRecord>> {
        let Some(reader) = &mut self.results else {
            return Ok(None);
        };
        loop {
            match &self.ahead {
                Some(record) if record.row > row => return Ok(None),
                Some(record) if record.row == row => return Ok(self.ahead.take()),
                // Passed over: the input no longer has this row.
                Some(record) if record.status.kind() == Kind::Changed => {
                    self.missing.get_or_insert(record.row);
                }
                _ => {}
            }
            match reader.next_record() {
                // A run writes its rows in input order, each once: a file
                // sorted or edited since would pass for rows the input lost.
                Some(Ok(record)) if record.row <= self.last_read => {
                    let why = format!(
                        "row {} comes after row {} in it: its rows are no longer in the order \
                         the run wrote them (sorted, or a line copied, in a spreadsheet?); \
                         resume needs the file as the run left it: put back a copy of it, or \
                         sort it by its row column again",
                        record.row, self.last_read
                    );
                    return Err(invalid(&self.previous.results, why));
                }
                Some(Ok(record)) => {
                    self.last_read = record.row;
                    self.ahead = Some(record);
                }
                Some(Err(error)) => return Err(invalid(&self.previous.results, error)),
                None => {
                    self.ahead = None;
                    return Ok(None);
                }
            }
        }
    }
}

/// Writes a whole results file in place of another only at the end: the
/// rows go to a temporary file beside it, renamed over it once complete, so
/// the file on disk is never half replaced.
pub(crate) struct Replacement {
    file: tempfile::NamedTempFile,
    path: PathBuf,
}

impl Replacement {
    /// `path` may be a symbolic link: the file it points to is replaced.
    /// Copies left beside it by a resumed run that was killed are removed
    /// (the caller holds the lock on `path`, so no run is writing them).
    pub(crate) fn new(path: &Path) -> io::Result<Replacement> {
        let path = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let folder = match path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let prefix = format!(
            ".{}.gcore-iam-bulk-",
            path.file_name().unwrap_or_default().to_string_lossy()
        );
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(&prefix) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let file = tempfile::Builder::new()
            .prefix(&prefix)
            .tempfile_in(&folder)?;
        // The new file keeps the old one's permissions.
        if let Ok(old) = std::fs::metadata(&path) {
            let _ = file.as_file().set_permissions(old.permissions());
        }
        Ok(Replacement { file, path })
    }

    pub(crate) fn file(&self) -> io::Result<File> {
        self.file.as_file().try_clone()
    }

    /// Puts the finished file in place (after it reached the disk).
    pub(crate) fn commit(self) -> io::Result<()> {
        self.file.as_file().sync_all()?;
        self.file.persist(&self.path).map_err(|error| error.error)?;
        Ok(())
    }
}
