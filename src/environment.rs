//! Names of environment variables that more than the settings must know: a
//! leaf, importing nothing of the crate. The settings read them; the rest
//! only names them (the workbook reader's child process is started without
//! the key).

/// The environment variable that holds the API key.
pub(crate) const API_KEY_ENV: &str = "GCORE_API_KEY";
