//! CSV in and out: the input reader (`input`), the results record that is
//! written and read back (`results`), and the writer of the input format
//! (`input_format`), and the record of a run on disk: the results file and
//! its journal (`record`). Spreadsheet files will join them here.

pub mod binary;
mod bytes;
pub mod cells;
pub(crate) mod csv_out;
pub mod header;
pub mod input;
pub mod input_format;
pub mod isolated;
pub mod layout;
pub mod members_log;
pub mod record;
pub mod results;
pub mod sheet;
pub mod spool;
pub mod status;
pub mod undo;
pub mod xlsx;
pub(crate) mod zipped;

/// A csv error as the I/O error it is (a full disk, a reader gone), so
/// that its kind is seen (`-o - | head` is no error); another as text.
pub(crate) fn into_io(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(io) => io,
        other => std::io::Error::other(format!("{other:?}")),
    }
}
