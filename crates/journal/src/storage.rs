//! Where the journal's files live: a directory on the real disk ([`FileStorage`]), or a simulated
//! disk that tears writes, loses what was not fsync'd at a crash and returns read errors (the
//! simulator's). The journal's every read and write goes through [`Storage`], so the simulator
//! runs the same recovery code as a start.
//!
//! Every operation but `append` is durable when it returns (the real one fsyncs the file and its
//! directory); `append` is durable only once `sync` returns.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

pub trait Storage: Send {
    /// The names of the files, in any order.
    fn list(&self) -> std::io::Result<Vec<String>>;
    /// A file's bytes (`NotFound` if there is none).
    fn read(&self, name: &str) -> std::io::Result<Vec<u8>>;
    /// A new, empty file (an error if it exists).
    fn create(&mut self, name: &str) -> std::io::Result<()>;
    /// Adds bytes at the end of a file; durable only after [`Storage::sync`].
    fn append(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
    /// Makes what was appended to a file durable (`fdatasync`).
    fn sync(&mut self, name: &str) -> std::io::Result<()>;
    /// Cuts a file to `len` bytes.
    fn truncate(&mut self, name: &str, len: u64) -> std::io::Result<()>;
    /// Replaces a file's whole content at once (written aside, synced, renamed over it).
    fn replace(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()>;
    fn remove(&mut self, name: &str) -> std::io::Result<()>;
    /// Where a file is, for error messages.
    fn path(&self, name: &str) -> PathBuf;
}

/// A directory on the real disk.
pub struct FileStorage {
    dir: PathBuf,
    /// The file being appended to, kept open.
    appending: Option<(String, File)>,
}

impl FileStorage {
    pub fn open(dir: &Path) -> std::io::Result<FileStorage> {
        std::fs::create_dir_all(dir)?;
        Ok(FileStorage { dir: dir.to_path_buf(), appending: None })
    }

    fn sync_dir(&self) -> std::io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }

    fn appending(&mut self, name: &str) -> std::io::Result<&mut File> {
        if self.appending.as_ref().is_none_or(|(open, _)| open != name) {
            let file = OpenOptions::new().append(true).open(self.dir.join(name))?;
            self.appending = Some((name.to_owned(), file));
        }
        match &mut self.appending {
            Some((_, file)) => Ok(file),
            None => Err(std::io::Error::other("no file open for appending")),
        }
    }
}

impl Storage for FileStorage {
    fn list(&self) -> std::io::Result<Vec<String>> {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&self.dir)? {
            if let Some(name) = entry?.file_name().to_str() {
                names.push(name.to_owned());
            }
        }
        Ok(names)
    }

    fn read(&self, name: &str) -> std::io::Result<Vec<u8>> {
        std::fs::read(self.dir.join(name))
    }

    fn create(&mut self, name: &str) -> std::io::Result<()> {
        OpenOptions::new().create_new(true).append(true).open(self.dir.join(name))?;
        self.sync_dir()
    }

    fn append(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        self.appending(name)?.write_all(bytes)
    }

    fn sync(&mut self, name: &str) -> std::io::Result<()> {
        self.appending(name)?.sync_data()
    }

    fn truncate(&mut self, name: &str, len: u64) -> std::io::Result<()> {
        let file = OpenOptions::new().write(true).open(self.dir.join(name))?;
        file.set_len(len)?;
        file.sync_all()
    }

    fn replace(&mut self, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let pending = self.dir.join(format!("{name}.tmp"));
        let mut file = File::create(&pending)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&pending, self.dir.join(name))?;
        self.sync_dir()
    }

    fn remove(&mut self, name: &str) -> std::io::Result<()> {
        if self.appending.as_ref().is_some_and(|(open, _)| open == name) {
            self.appending = None;
        }
        std::fs::remove_file(self.dir.join(name))?;
        self.sync_dir()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}
