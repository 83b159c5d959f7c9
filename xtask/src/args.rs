//! `--flag value` option parsing shared by the xtask subcommands that take options
//! (`scale`, `footprint`): the same error messages everywhere ("--x needs a value",
//! "unknown option …; usage: …") without pulling a CLI parser into the dev tasks.

use std::str::FromStr;

use anyhow::{Context, Result, anyhow};

/// The options of one subcommand, read flag by flag.
pub struct Opts<'a> {
    it: std::slice::Iter<'a, String>,
    usage: &'static str,
}

impl<'a> Opts<'a> {
    /// Reads `args`; `usage` (e.g. `cargo xtask footprint [--gpus N]`) is shown for an
    /// unknown option.
    pub fn new(args: &'a [String], usage: &'static str) -> Self {
        Self {
            it: args.iter(),
            usage,
        }
    }

    /// The next flag, or `None` at the end.
    pub fn next_flag(&mut self) -> Option<&'a str> {
        self.it.next().map(String::as_str)
    }

    /// The value that follows `flag`.
    pub fn value(&mut self, flag: &str) -> Result<&'a str> {
        self.it
            .next()
            .map(String::as_str)
            .with_context(|| format!("{flag} needs a value"))
    }

    /// The value that follows `flag`, parsed; an error names the flag.
    pub fn parse<T>(&mut self, flag: &str) -> Result<T>
    where
        T: FromStr,
        T::Err: std::error::Error + Send + Sync + 'static,
    {
        self.value(flag)?.parse().with_context(|| flag.to_owned())
    }

    /// The error for an option the subcommand does not know, with its usage line.
    pub fn unknown(&self, flag: &str) -> anyhow::Error {
        anyhow!("unknown option {flag}; usage: {}", self.usage)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_values_and_errors() {
        let a = args(&["--n", "7", "--s", "x", "--bad", "--n"]);
        let mut o = Opts::new(&a, "cargo xtask t [--n N]");
        assert_eq!(o.next_flag(), Some("--n"));
        assert_eq!(o.parse::<u32>("--n").unwrap(), 7);
        assert_eq!(o.next_flag(), Some("--s"));
        let err = o.parse::<u32>("--s").unwrap_err();
        assert!(format!("{err:#}").starts_with("--s: "), "{err:#}");
        assert_eq!(
            o.unknown("--bad").to_string(),
            "unknown option --bad; usage: cargo xtask t [--n N]"
        );
        assert_eq!(o.next_flag(), Some("--bad"));
        assert_eq!(o.next_flag(), Some("--n"));
        assert_eq!(o.value("--n").unwrap_err().to_string(), "--n needs a value");
        assert_eq!(o.next_flag(), None);
    }
}
