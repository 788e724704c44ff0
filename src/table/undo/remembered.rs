//! The files around the undo file: where a results file remembers its
//! run's undo file (`<results>.undo`), and whether an undo file holds a
//! way back at all.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

use crate::table::record::open_private;

/// Where a results file remembers the undo file of its run: beside it,
/// `<results>.undo`, holding the undo file's path, so that a resume goes
/// on with the same undo file.
pub(crate) fn remembered_path(results: &Path) -> PathBuf {
    let mut name = results.as_os_str().to_os_string();
    name.push(".undo");
    PathBuf::from(name)
}

/// What the record at `results` remembers of its run's undo file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Remembered {
    /// No `<results>.undo` (a record of an older version, or removed).
    Unknown,
    /// The run kept no undo file.
    None,
    /// The run kept this one.
    File(PathBuf),
}

/// What the record at `results` remembers of its run's undo file.
pub(crate) fn remembered(results: &Path) -> io::Result<Remembered> {
    use std::io::Read;
    let file = match File::open(remembered_path(results)) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Remembered::Unknown),
        Err(error) => return Err(error),
    };
    // A path: a few KiB at most (a longer file is not one this tool wrote).
    let mut bytes = Vec::new();
    file.take(MAX_REMEMBERED_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_REMEMBERED_BYTES {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "it is not a path this tool wrote (too long)",
        ));
    }
    let path = bytes.strip_suffix(b"\n").unwrap_or(&bytes);
    #[cfg(unix)]
    let path = PathBuf::from(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(path));
    #[cfg(not(unix))]
    let path = PathBuf::from(String::from_utf8_lossy(path).into_owned());
    Ok(match path.as_os_str().is_empty() {
        true => Remembered::None,
        false => Remembered::File(path),
    })
}

/// Whether the file at `path` may hold a way back: anything but an undo
/// file's header alone (what a run that changed nothing leaves), which may
/// be given again. Any other file (a row besides the header, another
/// header, notes of a person's, one that cannot be read) is never replaced.
pub(crate) fn holds_a_way_back(path: &Path) -> bool {
    let header = super::undo_header().join(",");
    match crate::files::read_start(path, header.len() as u64 + 3) {
        Err(_) => true,
        Ok(start) => {
            let text = String::from_utf8_lossy(&start);
            let line = text.strip_suffix('\n').unwrap_or(&text);
            line.strip_suffix('\r').unwrap_or(line) != header
        }
    }
}

/// The longest `<results>.undo` read: a path (Linux allows 4,096 bytes).
const MAX_REMEMBERED_BYTES: u64 = 16 * 1024;

/// Makes the results file at `results` remember `undo` (its absolute
/// path), or that its run keeps none (an empty file): written and synced
/// before anything is sent.
pub fn remember(results: &Path, undo: Option<&Path>) -> io::Result<()> {
    use std::io::Write;
    let path = remembered_path(results);
    let mut file = open_private(&path)?;
    file.set_len(0)?;
    if let Some(undo) = undo {
        let absolute = std::path::absolute(undo)?;
        file.write_all(absolute.as_os_str().as_encoded_bytes())?;
        file.write_all(b"\n")?;
    }
    file.sync_all()
}
