//! A value read from files, read again when they change: the credential file and JWT key
//! sets. Readers take the current value with [`Watched::current`], a cheap `Arc` clone, so a
//! login in progress keeps the value it started with while a reload swaps in the next one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::SystemTime;

/// Size and modification time of a file: enough to notice a rewrite, including the symlink
/// swap of a Kubernetes secret volume (metadata follows the link). `None`: unreadable.
type Stamp = Option<(u64, SystemTime)>;

/// Turns the files' contents, in the order of their paths, into a value, or lists every
/// problem with them.
pub type Parse<T> = dyn Fn(&[(&Path, Vec<u8>)]) -> Result<T, Vec<String>> + Send + Sync;

/// Why files could not be used: every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .problems.join("; "))]
pub struct LoadError {
    pub problems: Vec<String>,
}

/// A value and the files it was read from.
pub struct Watched<T> {
    paths: Vec<PathBuf>,
    parse: Box<Parse<T>>,
    current: RwLock<Arc<T>>,
    /// The files' stamps when `current` was read from them.
    loaded: Mutex<Vec<Stamp>>,
}

impl<T> std::fmt::Debug for Watched<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watched")
            .field("paths", &self.paths)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> Watched<T> {
    /// Reads the files and parses them; fails with every problem when they cannot be used.
    pub fn load(paths: Vec<PathBuf>, parse: Box<Parse<T>>) -> Result<Watched<T>, LoadError> {
        let (stamps, value) = read(&paths, &parse)?;
        Ok(Watched {
            paths,
            parse,
            current: RwLock::new(Arc::new(value)),
            loaded: Mutex::new(stamps),
        })
    }

    /// The value as last read successfully.
    pub fn current(&self) -> Arc<T> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the files again if their size or modification time changed since the value was
    /// read. Returns whether the value was replaced. When the new contents cannot be used,
    /// the old value stays and every problem is returned; the next call tries again, so a
    /// file caught half-written is picked up once complete.
    pub fn reload_if_changed(&self) -> Result<bool, LoadError> {
        let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if stamps(&self.paths) == *loaded {
            return Ok(false);
        }
        let (stamps, value) = read(&self.paths, &self.parse)?;
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(value);
        *loaded = stamps;
        Ok(true)
    }

    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }
}

/// The stamps are taken before the contents are read: a write in between makes the next
/// check see a change and read again, never the reverse.
fn read<T: 'static>(paths: &[PathBuf], parse: &Parse<T>) -> Result<(Vec<Stamp>, T), LoadError> {
    let stamps = stamps(paths);
    let mut problems = Vec::new();
    let mut contents = Vec::with_capacity(paths.len());
    for path in paths {
        match std::fs::read(path) {
            Ok(bytes) => contents.push((path.as_path(), bytes)),
            Err(e) => problems.push(format!("{}: cannot read it: {e}", path.display())),
        }
    }
    if !problems.is_empty() {
        return Err(LoadError { problems });
    }
    let value = parse(&contents).map_err(|problems| LoadError { problems })?;
    Ok((stamps, value))
}

fn stamps(paths: &[PathBuf]) -> Vec<Stamp> {
    paths
        .iter()
        .map(|path| {
            let meta = std::fs::metadata(path).ok()?;
            Some((meta.len(), meta.modified().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A number per file, summed; a file that is not a number is a problem.
    fn sum() -> Box<Parse<u64>> {
        Box::new(|files| {
            let mut problems = Vec::new();
            let mut total = 0;
            for (path, bytes) in files {
                match std::str::from_utf8(bytes)
                    .ok()
                    .and_then(|t| t.trim().parse::<u64>().ok())
                {
                    Some(n) => total += n,
                    None => problems.push(format!("{} is not a number", path.display())),
                }
            }
            if problems.is_empty() {
                Ok(total)
            } else {
                Err(problems)
            }
        })
    }

    fn dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("kafka-edge-watch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn reloads_on_change_and_keeps_the_old_value_on_bad_input() {
        let dir = dir("reload");
        let (a, b) = (dir.join("a"), dir.join("b"));
        std::fs::write(&a, "1").unwrap();
        std::fs::write(&b, "2").unwrap();
        let watched = Watched::load(vec![a.clone(), b.clone()], sum()).unwrap();
        assert_eq!(*watched.current(), 3);
        assert!(!watched.reload_if_changed().unwrap());

        // A different size is a change.
        std::fs::write(&a, "10").unwrap();
        assert!(watched.reload_if_changed().unwrap());
        assert_eq!(*watched.current(), 12);

        // Both files bad: both reported, the old value kept, and tried again next time.
        std::fs::write(&a, "ten").unwrap();
        std::fs::write(&b, "twenty").unwrap();
        let err = watched.reload_if_changed().unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        assert!(err.to_string().contains("a is not a number"), "{err}");
        assert_eq!(*watched.current(), 12);
        assert!(watched.reload_if_changed().is_err());

        std::fs::write(&a, "5").unwrap();
        std::fs::write(&b, "6").unwrap();
        assert!(watched.reload_if_changed().unwrap());
        assert_eq!(*watched.current(), 11);

        // A vanished file is a problem, not a panic, and the value stays.
        std::fs::remove_file(&b).unwrap();
        let err = watched.reload_if_changed().unwrap_err();
        assert!(err.to_string().contains("cannot read it"), "{err}");
        assert_eq!(*watched.current(), 11);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_bad_first_load_reports_every_problem() {
        let dir = dir("first");
        let a = dir.join("a");
        std::fs::write(&a, "x").unwrap();
        let err = Watched::load(vec![a, dir.join("missing")], sum()).unwrap_err();
        assert_eq!(
            err.problems.len(),
            1,
            "unreadable files stop before parsing: {err}"
        );
        assert!(err.problems[0].contains("missing: cannot read it"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
