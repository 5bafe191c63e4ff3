//! `kafka-edge credentials add`: puts a user's salted SCRAM credential in a credential file,
//! reading the password from standard input so that it never shows in a process list or a
//! shell history. The derivation is [`credentials::with_password`]; this is the I/O around
//! it: a fresh salt, the file read and replaced whole (written aside, then renamed, owner-only
//! permissions), so a gateway re-reading it never sees half a file.

use std::io::{BufRead, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ring::rand::SecureRandom;

use crate::edge::auth::credentials::{self, DEFAULT_ITERATIONS, SALT_LEN};
use crate::edge::auth::sasl::Mechanism;

/// `kafka-edge credentials ...`
#[derive(Debug, clap::Args)]
pub struct CredentialsArgs {
    #[command(subcommand)]
    pub command: CredentialsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum CredentialsCommand {
    /// Add a user's credential to a credential file, or replace it; the password is the
    /// first line of standard input (`read -rs P; printf '%s\n' "$P" | kafka-edge credentials add ...`).
    /// PLAIN logins check against the same credential.
    Add {
        /// The credential file; created if missing.
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
        #[arg(long, value_name = "NAME")]
        user: String,
        /// SCRAM-SHA-256 or SCRAM-SHA-512.
        #[arg(long, value_name = "MECHANISM")]
        mechanism: String,
        /// PBKDF2 iterations (4096 to 1000000).
        #[arg(long, default_value_t = DEFAULT_ITERATIONS)]
        iterations: u32,
    },
}

/// Runs a `credentials` command with the process's standard input.
pub fn run(args: CredentialsArgs) -> anyhow::Result<()> {
    run_with(args, &mut std::io::stdin().lock())
}

fn run_with(args: CredentialsArgs, input: &mut impl BufRead) -> anyhow::Result<()> {
    let CredentialsCommand::Add {
        file,
        user,
        mechanism,
        iterations,
    } = args.command;
    let Some(Mechanism::Scram(hash)) = Mechanism::ALL
        .into_iter()
        .find(|m| m.name().eq_ignore_ascii_case(&mechanism))
    else {
        bail!(
            "--mechanism {mechanism:?}: SCRAM-SHA-256 or SCRAM-SHA-512 (PLAIN logins use either)"
        );
    };
    let mut password = String::new();
    input
        .read_line(&mut password)
        .context("cannot read the password from standard input")?;
    let password = password.trim_end_matches(['\n', '\r']);
    let existing = match std::fs::read(&file) {
        Ok(bytes) => Some(bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let mut salt = [0u8; SALT_LEN];
    ring::rand::SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| anyhow::anyhow!("cannot draw a salt from the system's random source"))?;
    let text = credentials::with_password(
        existing.as_deref(),
        &user,
        hash,
        password.as_bytes(),
        iterations,
        &salt,
    )
    .with_context(|| format!("{}", file.display()))?;
    replace(&file, text.as_bytes())?;
    eprintln!(
        "kafka-edge: {} credential of user {user:?} written to {}",
        Mechanism::Scram(hash),
        file.display()
    );
    Ok(())
}

/// Writes `contents` beside `path`, then renames it over `path`.
fn replace(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{} is not a file name", path.display()))?;
    let mut aside = name.to_owned();
    aside.push(format!(".tmp-{}", std::process::id()));
    let aside = path.with_file_name(aside);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&aside)
        .and_then(|mut f| f.write_all(contents).and_then(|_| f.sync_all()))
        .and_then(|_| std::fs::rename(&aside, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&aside);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::cluster::scram::Hash;
    use crate::edge::auth::credentials::{Credentials, DecoySecret, Lookup};

    fn add(file: &Path, user: &str, mechanism: &str, stdin: &str) -> anyhow::Result<()> {
        let args = CredentialsArgs {
            command: CredentialsCommand::Add {
                file: file.to_owned(),
                user: user.into(),
                mechanism: mechanism.into(),
                iterations: 4096,
            },
        };
        run_with(args, &mut stdin.as_bytes())
    }

    /// The shape main.rs gives the subcommand: `kafka-edge credentials add ...`.
    #[test]
    fn the_command_line_parses() {
        use clap::Parser;
        #[derive(clap::Parser)]
        enum Cli {
            Credentials(CredentialsArgs),
        }
        let Cli::Credentials(args) = Cli::try_parse_from([
            "kafka-edge",
            "credentials",
            "add",
            "--file",
            "u.json",
            "--user",
            "alice",
            "--mechanism",
            "SCRAM-SHA-256",
        ])
        .unwrap();
        let CredentialsCommand::Add {
            file,
            user,
            mechanism,
            iterations,
        } = args.command;
        assert_eq!(
            (file, user.as_str(), mechanism.as_str(), iterations),
            (
                "u.json".into(),
                "alice",
                "SCRAM-SHA-256",
                DEFAULT_ITERATIONS
            )
        );
        assert!(Cli::try_parse_from([
            "kafka-edge",
            "credentials",
            "add",
            "--file",
            "u.json",
            "--user",
            "a"
        ])
        .is_err());
    }

    #[test]
    fn adds_users_to_a_new_then_existing_file() {
        let dir = std::env::temp_dir().join(format!("kafka-edge-cli-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("users.json");
        add(&file, "alice", "SCRAM-SHA-512", "pencil\n").unwrap();
        add(
            &file,
            "bob",
            "scram-sha-256",
            "crayon\r\nignored second line\n",
        )
        .unwrap();
        let text = std::fs::read(&file).unwrap();
        let credentials = Credentials::parse(&text, DecoySecret::fixed([0; 32])).unwrap();
        assert_eq!(credentials.verify_password("alice", b"pencil"), Ok(()));
        assert_eq!(credentials.verify_password("bob", b"crayon"), Ok(()));
        assert!(matches!(
            credentials.scram("bob", Hash::Sha256),
            Lookup::Known(_)
        ));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Fresh salts: the same password gives another credential.
        add(&file, "carol", "SCRAM-SHA-512", "pencil\n").unwrap();
        let credentials =
            Credentials::parse(&std::fs::read(&file).unwrap(), DecoySecret::fixed([0; 32]))
                .unwrap();
        assert_ne!(
            credentials.scram("alice", Hash::Sha512).credential().salt,
            credentials.scram("carol", Hash::Sha512).credential().salt
        );

        let err = add(&file, "dave", "PLAIN", "pw\n").unwrap_err();
        assert!(
            err.to_string().contains("SCRAM-SHA-256 or SCRAM-SHA-512"),
            "{err}"
        );
        let err = add(&file, "dave", "SCRAM-SHA-512", "\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("the password is empty"),
            "{err:#}"
        );
        // A broken file is left alone.
        std::fs::write(&file, "{").unwrap();
        let err = add(&file, "dave", "SCRAM-SHA-512", "pw\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("not a credential file"),
            "{err:#}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "{");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            1,
            "no temporary file left"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
