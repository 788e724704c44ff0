//! What the settings (which check a run's files before anything is sent),
//! the profile and the sink (which writes them) share about files: a leaf,
//! importing nothing of the crate.

use std::path::Path;

/// The folder a file named `path` goes in (`.` for a bare name).
pub(crate) fn folder_of(path: &Path) -> &Path {
    match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    }
}

/// At most the first `limit` bytes of the file at `path` (fewer when it is
/// shorter): how a file is told apart before it is read whole or replaced.
pub(crate) fn read_start(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut start = Vec::new();
    std::fs::File::open(path)?
        .take(limit)
        .read_to_end(&mut start)?;
    Ok(start)
}

/// The mark a page of this tool carries, near its top (the report writes
/// it): a file without it is not replaced without `--overwrite` (the
/// settings look for it).
pub(crate) const REPORT_MARK: &str = r#"<meta name="generator" content="gcore-iam-bulk">"#;

/// An error as the operating system says it, without the path of a
/// temporary file that the crate adds (the message names the real file).
pub(crate) fn plain_io_error(error: std::io::Error) -> std::io::Error {
    if let Some(code) = error.raw_os_error() {
        return std::io::Error::from_raw_os_error(code);
    }
    // tempfile's errors read `<the system's error> at path "<a temporary
    // name>"`, a name the user never gave: the system's error alone.
    let text = error.to_string();
    if let Some((cause, _)) = text.split_once(" at path \"") {
        return std::io::Error::new(error.kind(), cause.to_string());
    }
    error
}
