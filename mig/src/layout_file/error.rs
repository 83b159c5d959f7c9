//! Where a problem in a layout file is ([`KeyPath`]) and the error that says so
//! ([`ConfigError`]: file, line, column, key, and what to do).
use std::fmt;

/// One step of a path into the YAML document: a mapping key or a sequence index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSeg {
    Key(String),
    Index(usize),
}

/// A path into the document, displayed like `mig-configs.seed-mixed[0].mig-devices."3g.20gb@4"`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPath(pub Vec<PathSeg>);

impl KeyPath {
    pub(super) fn key(mut self, k: impl Into<String>) -> Self {
        self.0.push(PathSeg::Key(k.into()));
        self
    }

    pub(super) fn index(mut self, i: usize) -> Self {
        self.0.push(PathSeg::Index(i));
        self
    }
}

impl fmt::Display for KeyPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                PathSeg::Key(k) => {
                    if i > 0 {
                        f.write_str(".")?;
                    }
                    if k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                    {
                        f.write_str(k)?;
                    } else {
                        write!(f, "\"{k}\"")?;
                    }
                }
                PathSeg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// A problem in a layout file, with where it is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{}: {}{message}",
    match (line, column) { (Some(l), Some(c)) => format!(":{l}:{c}"), (Some(l), None) => format!(":{l}"), _ => String::new() },
    if path.0.is_empty() { String::new() } else { format!("{path}: ") })]
pub struct ConfigError {
    /// The file name (or `<built-in vmig-layouts.yaml>`, `<stdin>`).
    pub origin: String,
    /// 1-based line, when the position could be recovered.
    pub line: Option<usize>,
    /// 1-based column.
    pub column: Option<usize>,
    /// The key the problem is about.
    pub path: KeyPath,
    /// What is wrong and how to fix it.
    pub message: String,
}
