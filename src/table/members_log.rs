//! The invitations and removals a run is about to send, beside its results
//! file (`<results>.members`): a line each, handed to the operating system
//! before its request leaves, so that after a crash (even `kill -9`) a
//! resumed run knows which addresses in the account its own invitations
//! put there (and finishes those rows instead of inviting again), and
//! which users its own removals took out. An address in the account that
//! this file does not name is someone else's: its row stays `invalid`.

use std::collections::HashSet;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::record::open_private;

/// Where the record at `results` keeps its invitations and removals.
pub(crate) fn members_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_os_string();
    name.push(".members");
    PathBuf::from(name)
}

/// The longest line read back: an address is at most 254 bytes.
const MAX_LINE: usize = 1024;

/// What the earlier runs of a record sent: the addresses invited (lower
/// case) and the users removed.
#[derive(Debug, Default)]
pub struct Earlier {
    invited: HashSet<String>,
    removed: HashSet<u64>,
    /// Invitations and removals whose last attempt did nothing (refused
    /// with a 4xx, or never arrived: no connection, a 429), whatever the
    /// account holds now.
    refused_invites: HashSet<String>,
    refused_removals: HashSet<u64>,
    /// The addresses of the users whose last removal did nothing.
    kept: std::collections::HashMap<u64, String>,
}

impl Earlier {
    /// What the record at `results` says its runs sent (nothing when it
    /// has no such file).
    pub fn read(results: &Path) -> io::Result<Earlier> {
        let path = members_path(results);
        // Only a plain file is read (a FIFO would block the run for ever).
        match std::fs::metadata(&path) {
            Ok(meta) if !meta.is_file() => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "it is not a plain file",
                ));
            }
            _ => {}
        }
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                return Ok(Earlier::default());
            }
            Err(error) => return Err(error),
        };
        let mut earlier = Earlier::default();
        let mut reader = BufReader::new(file);
        let mut line = Vec::new();
        loop {
            line.clear();
            // A line longer than any this tool writes is passed over whole.
            let read =
                io::Read::take(&mut reader, MAX_LINE as u64 + 1).read_until(b'\n', &mut line)?;
            if read == 0 {
                break;
            }
            if line.len() > MAX_LINE {
                reader.skip_until(b'\n')?;
                continue;
            }
            // A last line without its end was cut by a crash: its request
            // may have gone, so it counts.
            let text = String::from_utf8_lossy(&line);
            // The last line of an address (a user) says what its last
            // attempt may have done: a retry that went after a refusal, or
            // a refusal after an attempt that may have gone.
            match text.trim_end().split_once(' ') {
                Some(("invite", address)) => {
                    earlier.refused_invites.remove(address);
                    earlier.invited.insert(address.to_string());
                }
                Some(("remove", id)) => {
                    if let Ok(id) = id.parse() {
                        earlier.refused_removals.remove(&id);
                        earlier.kept.remove(&id);
                        earlier.removed.insert(id);
                    }
                }
                Some(("refused-invite", address)) => {
                    earlier.refused_invites.insert(address.to_string());
                }
                Some(("refused-remove", rest)) => {
                    let (id, email) = rest.split_once(' ').unwrap_or((rest, ""));
                    if let Ok(id) = id.parse() {
                        earlier.refused_removals.insert(id);
                        if !email.is_empty() {
                            earlier.kept.insert(id, email.to_string());
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(earlier)
    }

    /// Whether an earlier run sent the invitation of `email` and did not
    /// hear it refused: it may have made the user.
    pub fn invited(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        self.invited.contains(&email) && !self.refused_invites.contains(&email)
    }

    /// Whether an earlier run sent the removal of user `id` and did not
    /// hear it refused.
    pub fn removed(&self, id: u64) -> bool {
        self.removed.contains(&id) && !self.refused_removals.contains(&id)
    }

    /// The addresses of users whose removal an earlier run heard refused:
    /// the undo file's rows that would invite them back go.
    pub fn kept(&self) -> impl Iterator<Item = &String> {
        self.kept.values()
    }
}

/// See the module's documentation.
pub struct MembersLog {
    path: PathBuf,
    file: Mutex<File>,
}

impl MembersLog {
    /// Opens the file of the record at `results`: emptied for a fresh run,
    /// gone on from for a resumed one (`continuing`).
    pub fn open(results: &Path, continuing: bool) -> io::Result<MembersLog> {
        let path = members_path(results);
        let mut file = open_private(&path)?;
        if !continuing {
            file.set_len(0)?;
        }
        let end = std::io::Seek::seek(&mut file, io::SeekFrom::End(0))?;
        // A line a crash cut stays (its request may have gone), ended.
        if end > 0 {
            let mut last = [0u8];
            std::io::Seek::seek(&mut file, io::SeekFrom::End(-1))?;
            io::Read::read_exact(&mut file, &mut last)?;
            if last[0] != b'\n' {
                file.write_all(b"\n")?;
            }
        }
        Ok(MembersLog {
            path,
            file: Mutex::new(file),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Notes the invitation of `email`, before it is sent.
    pub fn invite(&self, email: &str) -> io::Result<()> {
        self.line(&format!("invite {}\n", email.trim().to_lowercase()))
    }

    /// Notes the removal of user `id`, before it is sent.
    pub fn remove(&self, id: u64) -> io::Result<()> {
        self.line(&format!("remove {id}\n"))
    }

    /// Notes that the invitation of `email` did nothing (refused with a
    /// 4xx, or it never arrived): a resumed run must not take a user with
    /// that address for its own.
    pub fn invite_refused(&self, email: &str) -> io::Result<()> {
        self.line(&format!("refused-invite {}\n", email.trim().to_lowercase()))
    }

    /// Notes that the removal of user `id` (address `email`) was refused.
    pub fn remove_refused(&self, id: u64, email: &str) -> io::Result<()> {
        self.line(&format!(
            "refused-remove {id} {}\n",
            email.trim().to_lowercase()
        ))
    }

    fn line(&self, line: &str) -> io::Result<()> {
        let mut file = self.file.lock().unwrap_or_else(|e| e.into_inner());
        file.write_all(line.as_bytes())?;
        file.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_a_run_noted_is_read_back_by_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("in.results.csv");
        assert!(!Earlier::read(&results).unwrap().invited("a@example.com"));
        let log = MembersLog::open(&results, false).unwrap();
        log.invite(" A@Example.com").unwrap();
        log.remove(7).unwrap();
        drop(log);
        // A line cut by a crash, and one no run writes.
        let path = members_path(&results);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str(&format!("{}\ninvite b@exa", "x".repeat(5000)));
        std::fs::write(&path, text).unwrap();
        let earlier = Earlier::read(&results).unwrap();
        assert!(earlier.invited("a@example.com"));
        assert!(earlier.invited("b@exa"));
        assert!(earlier.removed(7));
        assert!(!earlier.removed(8));
        // Gone on from by a resume; emptied by a fresh run.
        MembersLog::open(&results, true).unwrap().remove(8).unwrap();
        assert!(Earlier::read(&results).unwrap().removed(8));
        MembersLog::open(&results, false).unwrap();
        assert!(!Earlier::read(&results).unwrap().removed(7));
    }

    #[test]
    fn the_last_line_of_an_address_or_a_user_says_what_its_last_attempt_did() {
        let dir = tempfile::tempdir().unwrap();
        let results = dir.path().join("in.results.csv");
        let log = MembersLog::open(&results, false).unwrap();
        // Refused, then sent again: it may have made the user.
        log.invite("a@example.com").unwrap();
        log.invite_refused("a@example.com").unwrap();
        log.invite("a@example.com").unwrap();
        // Sent, then did not arrive: it made nobody.
        log.invite("b@example.com").unwrap();
        log.invite_refused("b@example.com").unwrap();
        log.remove(5).unwrap();
        log.remove_refused(5, "five@example.com").unwrap();
        log.remove(5).unwrap();
        log.remove(6).unwrap();
        log.remove_refused(6, "six@example.com").unwrap();
        drop(log);
        let earlier = Earlier::read(&results).unwrap();
        assert!(earlier.invited("a@example.com"));
        assert!(!earlier.invited("b@example.com"));
        assert!(earlier.removed(5));
        assert!(!earlier.removed(6));
        let kept: Vec<&String> = earlier.kept().collect();
        assert_eq!(kept, ["six@example.com"]);
    }
}
