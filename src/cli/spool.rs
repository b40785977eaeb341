//! Bytes written now and copied out later, in memory while they are few and in an unlinked
//! temporary file beyond that: what the streamed commands hold back (JSON's findings until the
//! containers list is closed, a file's diff until the file is read to its end) costs a bounded
//! amount of memory however long the input is.

use std::fs::File;
use std::io::{self, BufWriter, Seek, Write};

/// Bytes kept in memory before they move to a temporary file.
const IN_MEMORY: usize = 256 * 1024;

#[derive(Default)]
pub struct Spool {
    memory: Vec<u8>,
    file: Option<BufWriter<File>>,
    len: u64,
}

impl Spool {
    pub fn new() -> Self {
        Spool::default()
    }

    /// How many bytes were written.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the bytes went to a temporary file.
    pub fn on_disk(&self) -> bool {
        self.file.is_some()
    }

    /// Writes every byte, in order, to `out`.
    pub fn copy_to(self, out: &mut impl Write) -> io::Result<()> {
        match self.file {
            None => out.write_all(&self.memory),
            Some(file) => {
                let mut file = file.into_inner().map_err(|e| e.into_error())?;
                file.rewind()?;
                io::copy(&mut file, out)?;
                Ok(())
            }
        }
    }
}

impl Write for Spool {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.file.is_none() && self.memory.len() + buf.len() > IN_MEMORY {
            let mut file = BufWriter::with_capacity(64 * 1024, tempfile::tempfile()?);
            file.write_all(&self.memory)?;
            self.memory = Vec::new();
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write_all(buf)?,
            None => self.memory.extend_from_slice(buf),
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.file {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_stays_in_memory_large_moves_to_disk_and_both_read_back() {
        let mut small = Spool::new();
        small.write_all(b"abc").unwrap();
        assert!(!small.on_disk());
        let mut out = Vec::new();
        small.copy_to(&mut out).unwrap();
        assert_eq!(out, b"abc");

        let chunk: Vec<u8> = (0..=255u8).cycle().take(100_000).collect();
        let mut large = Spool::new();
        for _ in 0..15 {
            large.write_all(&chunk).unwrap();
        }
        assert!(large.on_disk());
        assert_eq!(large.len(), 1_500_000);
        let mut out = Vec::new();
        large.copy_to(&mut out).unwrap();
        assert_eq!(out.len(), 1_500_000);
        assert!(out.chunks(100_000).all(|c| c == chunk.as_slice()));
    }
}
