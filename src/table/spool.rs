//! The run's private copies of the input: temporary files with no name,
//! removed by the operating system however the process ends (a signal, a
//! `process::exit`, a crash), never left behind in the temporary folder.
//! Each pass reads its own copy of the file position.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// An unnamed temporary file, written once and then read by any number of
/// independent passes.
pub struct Spool {
    file: Arc<File>,
}

impl Spool {
    /// A new, empty spool in the temporary folder.
    pub fn new() -> io::Result<Spool> {
        Ok(Spool {
            file: Arc::new(tempfile::tempfile()?),
        })
    }

    /// Writes to the end of the spool (only while no pass reads it).
    pub fn writer(&mut self) -> impl Write + '_ {
        &*self.file
    }

    /// A reader from the start, with a position of its own.
    pub fn reader(&self) -> SpoolReader {
        SpoolReader {
            file: Arc::clone(&self.file),
            at: 0,
        }
    }

    /// The file itself, for a child process to read or write.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// The spool's size in bytes.
    pub fn size(&self) -> io::Result<u64> {
        Ok(self.file.metadata()?.len())
    }
}

/// One pass over a [`Spool`]: positioned reads, so passes never share an
/// offset.
pub struct SpoolReader {
    file: Arc<File>,
    at: u64,
}

impl Read for SpoolReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_at(&self.file, buf, self.at)?;
        self.at += n as u64;
        Ok(n)
    }
}

impl Seek for SpoolReader {
    fn seek(&mut self, to: SeekFrom) -> io::Result<u64> {
        let at = match to {
            SeekFrom::Start(at) => Some(at),
            SeekFrom::Current(by) => self.at.checked_add_signed(by),
            SeekFrom::End(by) => self.file.metadata()?.len().checked_add_signed(by),
        };
        self.at =
            at.ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "seek before the start"))?;
        Ok(self.at)
    }
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, at)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], at: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, at)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passes_read_from_the_start_each_with_its_own_position() {
        let mut spool = Spool::new().unwrap();
        spool.writer().write_all(b"user_id\n1\n").unwrap();
        let mut first = spool.reader();
        let mut byte = [0u8; 4];
        first.read_exact(&mut byte).unwrap();
        let mut second = String::new();
        spool.reader().read_to_string(&mut second).unwrap();
        assert_eq!(second, "user_id\n1\n");
        let mut rest = String::new();
        first.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "_id\n1\n");
    }
}
