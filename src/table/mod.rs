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
