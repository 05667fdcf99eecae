//! A per-test scratch directory under /tmp, named like everything else so stale ones are found.

use std::path::{Path, PathBuf};

/// Where scratch directories live.
pub const TEMP_ROOT: &str = "/tmp";

/// A directory `/tmp/<tag>` removed (with its contents) on drop.
pub struct TempDir {
    path: PathBuf,
}

impl TempDir {
    /// Creates `/tmp/<tag>`; panics if it exists already or cannot be made.
    pub fn create(tag: &str) -> TempDir {
        let path = Path::new(TEMP_ROOT).join(tag);
        std::fs::create_dir(&path)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        TempDir { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A subdirectory, created on first use.
    pub fn subdir(&self, name: &str) -> PathBuf {
        let dir = self.path.join(name);
        std::fs::create_dir_all(&dir)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
        dir
    }

    /// Removes the directory now; returns an error message on failure.
    pub fn remove(&self) -> Result<(), String> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(format!("cannot remove {}: {e}", self.path.display())),
        }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = self.remove() {
            eprintln!("cleanup: {e}");
        }
    }
}
