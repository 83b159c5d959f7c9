//! Where `vmig` connects and how it logs in: the flags, plus the `GOVC_*` environment
//! variables vSphere admins already set for govc, resolved once into [`Target`]s.
//!
//! Precedence, per setting: command-line flag, then the user info of the URL
//! (`user:pass@host`), then the `GOVC_*` variable. A password is never *required* on the
//! command line: `--password-file`, `GOVC_PASSWORD` (or the URL's user info) and, when stdin
//! is a terminal, an interactive prompt are the sources, in that order.
//!
//! The rules are the agent's (agent/src/daemon/config.rs): `http://` only together with
//! `--insecure` (the password would cross the network in clear); `--insecure`, `--thumbprint`
//! and `--ca-file` are alternatives, so giving two is an error rather than one silently
//! winning; a password file must be private to its owner (mode 0600 or stricter), and only its
//! first line counts, without a trailing `\r`, and must not be empty. A password written in a
//! `--url` is visible to every local user in the process list, so it draws a warning.
//!
//! Nothing here connects; [`Target::connect_options`] hands the result to [`vcenter_client::Client`].

use std::path::PathBuf;

use vcenter_client::{ConnectOptions, Credentials, PasswordFileError, Sha256Thumbprint, TlsPolicy};

/// The connection flags every `vmig` command takes.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ConnectArgs {
    /// vCenter URL (`https://vc.example.com/sdk`, `vc.example.com`, `user@vc.example.com`);
    /// repeat for one report over several vCenters. Default: $GOVC_URL.
    #[arg(long = "url", value_name = "URL", global = true)]
    pub urls: Vec<String>,
    /// User name. Default: the URL's user, then $GOVC_USERNAME.
    #[arg(long, value_name = "USER", global = true)]
    pub username: Option<String>,
    /// File whose first line is the password. Default: the URL's password, then
    /// $GOVC_PASSWORD, then a prompt when stdin is a terminal.
    #[arg(long, value_name = "FILE", global = true)]
    pub password_file: Option<PathBuf>,
    /// PEM file of CA certificates to trust. Default: $GOVC_TLS_CA_CERTS (one or more files,
    /// `:`-separated like govc), then the system roots.
    #[arg(long, value_name = "FILE", global = true)]
    pub ca_file: Option<PathBuf>,
    /// Pin the server certificate's SHA-256 thumbprint (`AB:CD:…`); give one for all URLs or one per URL.
    #[arg(long, value_name = "SHA256", global = true)]
    pub thumbprint: Vec<String>,
    /// Do not verify the server certificate (labs only). Default: $GOVC_INSECURE.
    #[arg(long, global = true)]
    pub insecure: bool,
}

/// One vCenter to connect to, fully resolved.
#[derive(Debug, Clone)]
pub struct Target {
    /// The URL without user info, e.g. `https://vc.example.com/sdk`.
    pub url: String,
    /// Host (and port) part, for messages and report headings.
    pub host: String,
    /// Login.
    pub credentials: Credentials,
    /// Certificate trust.
    pub tls: TlsPolicy,
}

impl Target {
    /// Options for [`vcenter_client::Client::connect`].
    pub fn connect_options(&self) -> ConnectOptions {
        ConnectOptions::new(self.url.clone(), self.credentials.clone(), self.tls.clone())
    }
}

/// Why the connection settings cannot be used; each message says what to set.
#[derive(Debug, thiserror::Error)]
pub enum ConnectOptsError {
    /// Neither `--url` nor `GOVC_URL`.
    #[error("no vCenter given: pass --url https://vc.example.com or set GOVC_URL")]
    NoUrl,
    /// A URL that cannot be parsed.
    #[error("vCenter URL {url:?} is not valid: {reason}")]
    BadUrl {
        /// The URL as given (user info removed).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// No user name from any source.
    #[error(
        "no user name for {host}: pass --username, set GOVC_USERNAME or write user@{host} in the URL"
    )]
    NoUser {
        /// The vCenter.
        host: String,
    },
    /// No password from any source and no terminal to ask on.
    #[error(
        "no password for {user} at {host}: use --password-file FILE or GOVC_PASSWORD, \
         or run vmig from a terminal to be prompted"
    )]
    NoPassword {
        /// The user.
        user: String,
        /// The vCenter.
        host: String,
    },
    /// The password file could not be read.
    #[error("cannot read password file {}: {source}", path.display())]
    PasswordFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The interactive prompt failed.
    #[error("cannot prompt for the password of {user} at {host}: {source}")]
    Prompt {
        /// The user.
        user: String,
        /// The vCenter.
        host: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A thumbprint that is not 32 hex bytes.
    #[error("--thumbprint {value:?}: {reason}")]
    BadThumbprint {
        /// The value given.
        value: String,
        /// The parser's complaint.
        reason: String,
    },
    /// `http://` without `--insecure`.
    #[error(
        "vCenter URL {url} is plain HTTP: the password would travel unencrypted; use https:// \
         (or, for a lab simulator only, also pass --insecure or set GOVC_INSECURE=1)"
    )]
    PlainHttp {
        /// The URL (user info removed).
        url: String,
    },
    /// Two of `--insecure`, `--thumbprint`, `--ca-file`.
    #[error(
        "{0} and {1} are alternatives: give at most one of --insecure, --thumbprint and --ca-file"
    )]
    TlsConflict(&'static str, &'static str),
    /// A password file others can read or write.
    #[error(
        "password file {} is readable by {who} (mode {mode:04o}); it holds a vCenter password, \
         so vmig refuses to use it until only its owner can read it: chmod 600 {}",
        path.display(),
        path.display()
    )]
    PasswordFileMode {
        /// The file.
        path: PathBuf,
        /// Who else may read it.
        who: &'static str,
        /// Its permission bits.
        mode: u32,
    },
    /// A password file whose first line is empty.
    #[error("password file {} is empty (its first line is the password)", path.display())]
    PasswordFileEmpty {
        /// The file.
        path: PathBuf,
    },
    /// More than one thumbprint, but not one per URL.
    #[error(
        "{thumbprints} --thumbprint values for {urls} URLs: give one for all, or one per --url in the same order"
    )]
    ThumbprintCount {
        /// Thumbprints given.
        thumbprints: usize,
        /// URLs given.
        urls: usize,
    },
}

/// The parts of a govc-style URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    /// `https://host[:port]/sdk` (scheme and `/sdk` added when missing).
    pub url: String,
    /// `host[:port]`.
    pub host: String,
    /// Percent-decoded user from the user info.
    pub user: Option<String>,
    /// Percent-decoded password from the user info.
    pub password: Option<String>,
}

/// Parses `[scheme://][user[:password]@]host[:port][/path]` the way govc reads `GOVC_URL`:
/// the scheme defaults to `https`, the path to `/sdk`.
pub fn parse_url(raw: &str) -> Result<ParsedUrl, ConnectOptsError> {
    let raw = raw.trim();
    let (scheme, rest) = match raw.split_once("://") {
        Some((s, r)) => (s.to_ascii_lowercase(), r),
        None => ("https".to_string(), raw),
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    // The password may itself contain '@' when not escaped; the host never does.
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    let redacted = format!("{scheme}://{host}{path}");
    let bad = |reason: &str| ConnectOptsError::BadUrl {
        url: redacted.clone(),
        reason: reason.to_string(),
    };
    if scheme != "https" && scheme != "http" {
        return Err(bad(
            "only https:// (or http:// for simulators) is supported",
        ));
    }
    if host.is_empty() {
        return Err(bad("it names no host"));
    }
    let (user, password) = match userinfo {
        None => (None, None),
        Some(ui) => match ui.split_once(':') {
            Some((u, p)) => (Some(percent_decode(u)), Some(percent_decode(p))),
            None => (Some(percent_decode(ui)), None),
        },
    };
    let path = if path.is_empty() || path == "/" {
        "/sdk"
    } else {
        path
    };
    Ok(ParsedUrl {
        url: format!("{scheme}://{host}{path}"),
        host: host.to_string(),
        user: user.filter(|u| !u.is_empty()),
        password,
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(h) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(h);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "true" | "yes" | "on"
    )
}

/// Where the environment and the terminal come from (swapped out in tests).
pub trait Environment {
    /// A variable's value, `None` when unset or empty.
    fn var(&self, name: &str) -> Option<String>;
    /// Whether an interactive prompt is possible (stdin is a terminal).
    fn can_prompt(&self) -> bool;
    /// Asks for a password without echo.
    fn prompt_password(&self, prompt: &str) -> std::io::Result<String>;
    /// Tells the admin something that does not stop the command (stderr).
    fn warn(&self, message: &str) {
        eprintln!("vmig: warning: {message}");
    }
}

/// The real process environment and terminal.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnvironment;

impl Environment for ProcessEnvironment {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }

    fn can_prompt(&self) -> bool {
        use std::io::IsTerminal;
        std::io::stdin().is_terminal()
    }

    fn prompt_password(&self, prompt: &str) -> std::io::Result<String> {
        rpassword::prompt_password(prompt)
    }
}

impl ConnectArgs {
    /// Resolves the flags and environment into one [`Target`] per vCenter.
    pub fn resolve(&self, env: &dyn Environment) -> Result<Vec<Target>, ConnectOptsError> {
        let raw_urls: Vec<String> = if self.urls.is_empty() {
            env.var("GOVC_URL").into_iter().collect()
        } else {
            self.urls.clone()
        };
        if raw_urls.is_empty() {
            return Err(ConnectOptsError::NoUrl);
        }
        let thumbprints = self
            .thumbprint
            .iter()
            .map(|t| {
                t.parse::<Sha256Thumbprint>()
                    .map_err(|e| ConnectOptsError::BadThumbprint {
                        value: t.clone(),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if thumbprints.len() > 1 && thumbprints.len() != raw_urls.len() {
            return Err(ConnectOptsError::ThumbprintCount {
                thumbprints: thumbprints.len(),
                urls: raw_urls.len(),
            });
        }
        if self.insecure && !self.thumbprint.is_empty() {
            return Err(ConnectOptsError::TlsConflict("--insecure", "--thumbprint"));
        }
        if self.insecure && self.ca_file.is_some() {
            return Err(ConnectOptsError::TlsConflict("--insecure", "--ca-file"));
        }
        if !self.thumbprint.is_empty() && self.ca_file.is_some() {
            return Err(ConnectOptsError::TlsConflict("--thumbprint", "--ca-file"));
        }
        let file_password = match &self.password_file {
            Some(path) => Some(read_password_file(path)?),
            None => None,
        };
        let mut out = Vec::with_capacity(raw_urls.len());
        for (i, raw) in raw_urls.iter().enumerate() {
            let parsed = parse_url(raw)?;
            if parsed.password.is_some() && !self.urls.is_empty() {
                env.warn(&format!(
                    "the --url for {} holds a password, which every local user can read in the \
                     process list; use --password-file or GOVC_PASSWORD instead",
                    parsed.host
                ));
            }
            let user = self
                .username
                .clone()
                .or_else(|| parsed.user.clone())
                .or_else(|| env.var("GOVC_USERNAME"))
                .ok_or_else(|| ConnectOptsError::NoUser {
                    host: parsed.host.clone(),
                })?;
            let password = match file_password
                .clone()
                .or_else(|| parsed.password.clone())
                .or_else(|| env.var("GOVC_PASSWORD"))
            {
                Some(p) => p,
                None if env.can_prompt() => env
                    .prompt_password(&format!("Password for {user} at {}: ", parsed.host))
                    .map_err(|source| ConnectOptsError::Prompt {
                        user: user.clone(),
                        host: parsed.host.clone(),
                        source,
                    })?,
                None => {
                    return Err(ConnectOptsError::NoPassword {
                        user,
                        host: parsed.host.clone(),
                    });
                }
            };
            let thumbprint = match thumbprints.len() {
                0 => None,
                1 => Some(thumbprints[0]),
                _ => Some(thumbprints[i]),
            };
            let tls = if self.insecure {
                TlsPolicy::Insecure
            } else if let Some(t) = thumbprint {
                TlsPolicy::Thumbprint(t)
            } else if let Some(ca) = &self.ca_file {
                TlsPolicy::CaFile(ca.clone())
            } else if env.var("GOVC_INSECURE").is_some_and(|v| truthy(&v)) {
                TlsPolicy::Insecure
            } else if let Some(list) = env.var("GOVC_TLS_CA_CERTS") {
                ca_list_policy(&list)
            } else {
                TlsPolicy::SystemRoots
            };
            if parsed.url.starts_with("http://") && tls != TlsPolicy::Insecure {
                return Err(ConnectOptsError::PlainHttp { url: parsed.url });
            }
            out.push(Target {
                url: parsed.url,
                host: parsed.host,
                credentials: Credentials::new(user, password),
                tls,
            });
        }
        Ok(out)
    }
}

/// `GOVC_TLS_CA_CERTS`: one PEM file, or several separated by `:` as govc reads it (empty
/// entries skipped).
fn ca_list_policy(list: &str) -> TlsPolicy {
    let mut paths: Vec<PathBuf> = list
        .split(':')
        .filter(|p| !p.trim().is_empty())
        .map(PathBuf::from)
        .collect();
    if paths.len() == 1 {
        TlsPolicy::CaFile(paths.remove(0))
    } else {
        TlsPolicy::CaFiles(paths)
    }
}

/// The password in `path` (vcenter-client's rules, the agent's too: first line, owner-only).
fn read_password_file(path: &std::path::Path) -> Result<String, ConnectOptsError> {
    vcenter_client::read_password_file(path).map_err(|e| match e {
        PasswordFileError::Read { path, source } => ConnectOptsError::PasswordFile { path, source },
        PasswordFileError::Mode { path, who, mode } => {
            ConnectOptsError::PasswordFileMode { path, who, mode }
        }
        PasswordFileError::Empty { path } => ConnectOptsError::PasswordFileEmpty { path },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    struct FakeEnv {
        vars: HashMap<&'static str, &'static str>,
        tty: bool,
        warnings: std::cell::RefCell<Vec<String>>,
    }

    impl Environment for FakeEnv {
        fn var(&self, name: &str) -> Option<String> {
            self.vars.get(name).map(|v| v.to_string())
        }
        fn can_prompt(&self) -> bool {
            self.tty
        }
        fn prompt_password(&self, _prompt: &str) -> std::io::Result<String> {
            Ok("typed".into())
        }
        fn warn(&self, message: &str) {
            self.warnings.borrow_mut().push(message.to_string());
        }
    }

    fn private(path: &std::path::Path) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    fn env(vars: &[(&'static str, &'static str)], tty: bool) -> FakeEnv {
        FakeEnv {
            vars: vars.iter().copied().collect(),
            tty,
            warnings: Default::default(),
        }
    }

    #[test]
    fn govc_url_forms() {
        let p = parse_url("user%40vsphere.local:p%3Ass@vc.example.com").unwrap();
        assert_eq!(p.url, "https://vc.example.com/sdk");
        assert_eq!(p.user.as_deref(), Some("user@vsphere.local"));
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        let p = parse_url("http://127.0.0.1:8989/sdk").unwrap();
        assert_eq!(
            (p.url.as_str(), p.host.as_str(), p.user),
            ("http://127.0.0.1:8989/sdk", "127.0.0.1:8989", None)
        );
        let p = parse_url("https://admin@vc:443/").unwrap();
        assert_eq!(
            (p.url.as_str(), p.user.as_deref(), p.password),
            ("https://vc:443/sdk", Some("admin"), None)
        );
        // An unescaped '@' in the password: the host is after the last one.
        let p = parse_url("u:a@b@vc").unwrap();
        assert_eq!(
            (p.host.as_str(), p.password.as_deref()),
            ("vc", Some("a@b"))
        );
        let e = parse_url("ftp://u:secret@vc").unwrap_err().to_string();
        assert!(e.contains("only https://") && !e.contains("secret"), "{e}");
    }

    #[test]
    fn flags_beat_url_beat_env() {
        let args = ConnectArgs {
            urls: vec!["u1:p1@vc1".into()],
            ..Default::default()
        };
        let e = env(
            &[
                ("GOVC_USERNAME", "envuser"),
                ("GOVC_PASSWORD", "envpw"),
                ("GOVC_URL", "ignored"),
            ],
            false,
        );
        let t = &args.resolve(&e).unwrap()[0];
        assert_eq!(
            (t.credentials.user(), t.credentials.password().expose()),
            ("u1", "p1")
        );
        assert_eq!(t.tls, TlsPolicy::SystemRoots);

        let args = ConnectArgs {
            username: Some("flaguser".into()),
            ..Default::default()
        };
        let e = env(
            &[
                ("GOVC_URL", "https://vc2/sdk"),
                ("GOVC_PASSWORD", "envpw"),
                ("GOVC_INSECURE", "1"),
            ],
            false,
        );
        let t = &args.resolve(&e).unwrap()[0];
        assert_eq!(
            (t.url.as_str(), t.credentials.user()),
            ("https://vc2/sdk", "flaguser")
        );
        assert_eq!(t.credentials.password().expose(), "envpw");
        assert_eq!(t.tls, TlsPolicy::Insecure);
    }

    #[test]
    fn password_sources_and_prompt() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "from-file\nsecond line\n").unwrap();
        private(&file);
        let args = ConnectArgs {
            urls: vec!["u:urlpw@vc".into()],
            password_file: Some(file),
            ..Default::default()
        };
        let t = &args.resolve(&env(&[], false)).unwrap()[0];
        assert_eq!(t.credentials.password().expose(), "from-file");

        let args = ConnectArgs {
            urls: vec!["u@vc".into()],
            ..Default::default()
        };
        let t = &args.resolve(&env(&[], true)).unwrap()[0];
        assert_eq!(t.credentials.password().expose(), "typed");
        let e = args.resolve(&env(&[], false)).unwrap_err().to_string();
        assert!(
            e.contains("--password-file") && e.contains("u at vc"),
            "{e}"
        );
        let e = ConnectArgs::default().resolve(&env(&[], true)).unwrap_err();
        assert!(matches!(e, ConnectOptsError::NoUrl));
        let e = ConnectArgs {
            urls: vec!["vc".into()],
            ..Default::default()
        }
        .resolve(&env(&[("GOVC_PASSWORD", "x")], false))
        .unwrap_err();
        assert!(matches!(e, ConnectOptsError::NoUser { .. }));
    }

    #[test]
    fn tls_choices() {
        let tp = "AB:".repeat(31) + "CD";
        let args = ConnectArgs {
            urls: vec!["u:p@a".into(), "u:p@b".into()],
            thumbprint: vec![tp.clone()],
            ..Default::default()
        };
        let ts = args
            .resolve(&env(&[("GOVC_TLS_CA_CERTS", "/ca.pem")], false))
            .unwrap();
        assert!(ts.iter().all(|t| matches!(t.tls, TlsPolicy::Thumbprint(_))));
        let args = ConnectArgs {
            urls: vec!["u:p@a".into()],
            ..Default::default()
        };
        let ts = args
            .resolve(&env(&[("GOVC_TLS_CA_CERTS", "/ca.pem")], false))
            .unwrap();
        assert_eq!(ts[0].tls, TlsPolicy::CaFile("/ca.pem".into()));
        let args = ConnectArgs {
            urls: vec!["u:p@a".into(), "u:p@b".into(), "u:p@c".into()],
            thumbprint: vec![tp.clone(), tp],
            ..Default::default()
        };
        assert!(matches!(
            args.resolve(&env(&[], false)).unwrap_err(),
            ConnectOptsError::ThumbprintCount { .. }
        ));
    }

    #[test]
    fn connection_rules_match_the_agents() {
        let url = |u: &str, insecure: bool| ConnectArgs {
            urls: vec![u.into()],
            insecure,
            ..Default::default()
        };
        let e = url("http://u:p@vc", false)
            .resolve(&env(&[], false))
            .unwrap_err();
        assert!(matches!(e, ConnectOptsError::PlainHttp { .. }), "{e}");
        assert!(
            e.to_string().contains("--insecure") && !e.to_string().contains(":p@"),
            "{e}"
        );
        assert!(url("http://u:p@vc", true).resolve(&env(&[], false)).is_ok());
        let insecure_env = env(&[("GOVC_INSECURE", "1")], false);
        assert!(url("http://u:p@vc", false).resolve(&insecure_env).is_ok());

        // A password in --url works, with a warning; one from GOVC_URL is not on argv.
        let e = env(&[], false);
        url("u:secret@vc", false).resolve(&e).unwrap();
        let w = e.warnings.borrow().join("\n");
        assert!(w.contains("process list") && !w.contains("secret"), "{w}");
        let e = env(&[("GOVC_URL", "u:secret@vc")], false);
        ConnectArgs::default().resolve(&e).unwrap();
        assert!(e.warnings.borrow().is_empty());

        let tp = "AB:".repeat(31) + "CD";
        let mut args = url("u:p@vc", true);
        args.thumbprint = vec![tp.clone()];
        let e = args.resolve(&env(&[], false)).unwrap_err();
        assert!(
            e.to_string()
                .contains("--insecure and --thumbprint are alternatives"),
            "{e}"
        );
        let mut args = url("u:p@vc", false);
        args.thumbprint = vec![tp];
        args.ca_file = Some("/ca.pem".into());
        assert!(matches!(
            args.resolve(&env(&[], false)).unwrap_err(),
            ConnectOptsError::TlsConflict("--thumbprint", "--ca-file")
        ));
    }

    #[test]
    fn password_files_are_private_single_line_and_not_empty() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        let args = ConnectArgs {
            urls: vec!["u@vc".into()],
            password_file: Some(file.clone()),
            ..Default::default()
        };
        std::fs::write(&file, "pw\r\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = args.resolve(&env(&[], false)).unwrap_err().to_string();
        assert!(e.contains("mode 0644") && e.contains("chmod 600"), "{e}");
        private(&file);
        let t = &args.resolve(&env(&[], false)).unwrap()[0];
        assert_eq!(t.credentials.password().expose(), "pw", "CRLF stripped");
        std::fs::write(&file, "\r\nsecond\n").unwrap();
        assert!(matches!(
            args.resolve(&env(&[], false)).unwrap_err(),
            ConnectOptsError::PasswordFileEmpty { .. }
        ));
    }

    #[test]
    fn govc_ca_certs_is_a_path_list() {
        let args = ConnectArgs {
            urls: vec!["u:p@a".into()],
            ..Default::default()
        };
        let t = &args
            .resolve(&env(&[("GOVC_TLS_CA_CERTS", "/a.pem:/b.pem:")], false))
            .unwrap()[0];
        assert_eq!(
            t.tls,
            TlsPolicy::CaFiles(vec!["/a.pem".into(), "/b.pem".into()])
        );
    }
}
