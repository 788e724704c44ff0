//! `man`: the manual page, generated from the same clap definition the
//! program parses with, so it never falls behind a flag.

use std::io::{self, Write};

use clap::CommandFactory;

use super::{BIN, Cli, print};
use crate::error::Fatal;
use crate::exit::Exit;

/// One page for the whole tool: clap_mangen renders a page per command
/// (`gcore-iam-bulk-apply(1)`, ...), but one file is what people install,
/// so each subcommand's synopsis, description and options follow the
/// tool's own as a section of their own (their headings one level down).
pub(super) fn man() -> Result<Exit, Fatal> {
    render_man()
        .map_err(Fatal::Stdout)
        .and_then(|page| print(&page))
}

fn render_man() -> io::Result<Vec<u8>> {
    let mut command = Cli::command();
    command.build();
    let top = clap_mangen::Man::new(command.clone());
    let mut page = Vec::new();
    top.render_title(&mut page)?;
    top.render_name_section(&mut page)?;
    top.render_synopsis_section(&mut page)?;
    top.render_description_section(&mut page)?;
    top.render_options_section(&mut page)?;
    // clap's `help` subcommand is left out: `-h`/`--help` are on every command.
    // In the order of `--help`.
    let mut subcommands: Vec<_> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
    subcommands.sort_by_key(|sub| sub.get_display_order());
    writeln!(page, ".SH COMMANDS")?;
    writeln!(page, "Each command has a section of its own below.")?;
    for sub in &subcommands {
        let about = sub.get_about().map(ToString::to_string).unwrap_or_default();
        writeln!(
            page,
            ".TP\n\\fB{}\\fR\n{}",
            sub.get_name(),
            roff_text(&about)
        )?;
    }
    for sub in subcommands {
        writeln!(
            page,
            ".SH \"{} {}\"",
            BIN.to_uppercase(),
            sub.get_name().to_uppercase()
        )?;
        let man = clap_mangen::Man::new(sub.clone());
        let mut sections = Vec::new();
        man.render_synopsis_section(&mut sections)?;
        man.render_description_section(&mut sections)?;
        man.render_options_section(&mut sections)?;
        if sub.get_after_help().is_some() {
            man.render_extra_section(&mut sections)?;
        }
        for line in String::from_utf8_lossy(&sections).lines() {
            match line.strip_prefix(".SH ") {
                Some(heading) => writeln!(page, ".SS {heading}")?,
                None => writeln!(page, "{line}")?,
            }
        }
    }
    // The top command's after-help is the exit codes.
    let mut extra = Vec::new();
    top.render_extra_section(&mut extra)?;
    page.extend(
        String::from_utf8_lossy(&extra)
            .replace(".SH EXTRA", ".SH \"EXIT STATUS\"")
            .bytes(),
    );
    top.render_version_section(&mut page)?;
    Ok(page)
}

/// Text safe in a roff line: a backslash escaped, a leading `.` or `'`
/// (a roff request) guarded, and `-` as a hyphen-minus.
fn roff_text(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

/// The arguments of `man`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::ManArgs;

impl super::Run for Args {
    fn run(self) -> Result<Exit, Fatal> {
        man()
    }
}
