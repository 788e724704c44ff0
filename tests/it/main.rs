//! The integration tests: one program (linking one test binary per file
//! cost most of a CI run), a module per concern; `common` holds what they
//! share. Run one with `cargo test --test it <module>::`.

mod account_reads;
mod apply;
mod apply_sandbox;
mod common;
mod docs;
mod engine;
mod fuzz_input;
mod http;
mod layout;
mod libreoffice;
mod live;
mod members;
mod metrics;
mod network;
mod profiles;
mod report;
mod resume;
mod sandbox;
mod sdk;
mod secrets;
mod spreadsheet;
mod table;
mod throttles;
mod undo;
mod validate_cli;
mod workbook_bounds;
