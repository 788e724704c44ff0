//! The API's world, pure (no I/O): the user object and its enumerations
//! (`api`), the rules that turn a cell or a JSON value into a field of the
//! PATCH body (`patch`), and what a body does to a user (`change`). The tool
//! and the sandbox share all of it, so they cannot disagree.

pub mod action;
pub mod api;
pub mod change;
pub mod field;
pub mod patch;
