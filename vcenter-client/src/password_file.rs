//! A service account's password kept in a file, as the agent's config and `vmig
//! --password-file` name it. One reader for both, so both refuse the same files: a file its
//! group or other users can read or write, or one whose first line is empty.

use std::path::{Path, PathBuf};

/// Why a password file cannot be used. Callers wrap it in their own error, keeping the
/// path and the reason.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    /// It could not be read (or its mode could not be read).
    #[error("cannot read the password file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Its group or other users may read or write it.
    #[error("password file {} is readable or writable by {who} (mode {mode:o}): chmod 600 it", path.display())]
    Mode {
        /// The file.
        path: PathBuf,
        /// Who else may read it: "its group", "other users" or both.
        who: &'static str,
        /// The file's mode bits.
        mode: u32,
    },
    /// Its first line is empty.
    #[error("password file {} has an empty first line: the password goes on the first line", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
}

/// The password in `path`: its first line without the line end (`\n` or `\r\n`, so
/// `echo pw > file` and a file written on Windows both work), from a file only its owner can
/// read or write.
pub fn read_password_file(path: &Path) -> Result<String, PasswordFileError> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|source| PasswordFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let line = text.lines().next().unwrap_or("").trim_end_matches('\r');
    if line.is_empty() {
        return Err(PasswordFileError::Empty {
            path: path.to_path_buf(),
        });
    }
    Ok(line.to_string())
}

/// Refuses a file whose mode lets its group or other users read or write it.
pub fn check_private(path: &Path) -> Result<(), PasswordFileError> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(|source| PasswordFileError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let mode = meta.permissions().mode() & 0o7777;
    let who = match (mode & 0o070 != 0, mode & 0o007 != 0) {
        (false, false) => return Ok(()),
        (true, false) => "its group",
        (false, true) => "other users",
        (true, true) => "its group and other users",
    };
    Err(PasswordFileError::Mode {
        path: path.to_path_buf(),
        who,
        mode,
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn file(dir: &Path, text: &str, mode: u32) -> PathBuf {
        let p = dir.join("pw");
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn first_line_without_its_line_end() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "s3cret\r\nignored\n", 0o600);
        assert_eq!(read_password_file(&p).unwrap(), "s3cret");
    }

    #[test]
    fn shared_or_empty_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(dir.path(), "pw\n", 0o604);
        assert!(matches!(
            read_password_file(&p),
            Err(PasswordFileError::Mode {
                who: "other users",
                mode: 0o604,
                ..
            })
        ));
        let p = file(dir.path(), "\r\npw\n", 0o400);
        assert!(matches!(
            read_password_file(&p),
            Err(PasswordFileError::Empty { .. })
        ));
        let missing = dir.path().join("absent");
        assert!(matches!(
            read_password_file(&missing),
            Err(PasswordFileError::Read { .. })
        ));
    }
}
