//! `completions SHELL` and `man`: the command line described for the
//! shell and for `man`, generated from the same clap definition the
//! program parses with, so they never fall behind a flag.

use std::io::{self, Write};

use clap::CommandFactory;

use super::Cli;
use crate::cli::CompletionsArgs;
use crate::error::Fatal;
use crate::exit::Exit;

/// The name the completions are registered for: the binary's.
const BIN: &str = "gcore-iam-bulk";

pub(super) fn completions(args: &CompletionsArgs) -> Result<Exit, Fatal> {
    let mut script = Vec::new();
    if args.shell == clap_complete::Shell::Bash {
        // clap_complete's bash script names its cases after the binary with
        // each `-` replaced one way in one place and another way in the
        // other, so no subcommand of a hyphenated name ever completed
        // (clap_complete 4.6.12). Generated for a name without hyphens,
        // then registered for the real one.
        let plain = BIN.replace('-', "");
        clap_complete::generate(args.shell, &mut Cli::command(), &plain, &mut script);
        let text = String::from_utf8_lossy(&script).into_owned();
        let registered = text
            .lines()
            .map(|line| match line.trim_start().starts_with("complete -F") {
                true => format!(
                    "{}{BIN}\n",
                    line.strip_suffix(plain.as_str()).unwrap_or(line)
                ),
                false => format!("{line}\n"),
            })
            .collect::<String>();
        return print(registered.as_bytes());
    }
    clap_complete::generate(args.shell, &mut Cli::command(), BIN, &mut script);
    print(&script)
}

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
    let subcommands: Vec<_> = command
        .get_subcommands()
        .filter(|sub| !sub.is_hide_set() && sub.get_name() != "help")
        .collect();
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

/// To standard output; a reader that stops early (`| head`) is no error.
fn print(bytes: &[u8]) -> Result<Exit, Fatal> {
    let mut stdout = io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => Ok(Exit::Success),
        Err(error) if error.kind() == io::ErrorKind::BrokenPipe => Ok(Exit::Success),
        Err(error) => Err(Fatal::Stdout(error)),
    }
}

impl super::Run for CompletionsArgs {
    fn run(self) -> Result<Exit, Fatal> {
        completions(&self)
    }
}

impl super::Run for crate::cli::ManArgs {
    fn run(self) -> Result<Exit, Fatal> {
        man()
    }
}
