//! `completions SHELL`: the command line described for the shell,
//! generated from the same clap definition the program parses with, so it
//! never falls behind a flag.

use clap::CommandFactory;

use super::{BIN, Cli, print};
use crate::cli::CompletionsArgs;
use crate::error::Fatal;
use crate::exit::Exit;

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

/// The arguments of `completions`, with its help (the command's, in `--help`).
pub(crate) type Args = crate::cli::CompletionsArgs;

impl super::Run for Args {
    fn run(self) -> Result<Exit, Fatal> {
        completions(&self)
    }
}
