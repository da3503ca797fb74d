//! Reading record files (JSON Lines, TSV, CSV) one bounded line at a time.

use std::io::Read;

/// The longest line of a record file (JSON Lines, TSV, CSV: task, pair and corpus files) that
/// is read, 1 MiB: a longer one is refused instead of held whole in memory.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// A reader that fails, with an [`std::io::ErrorKind::InvalidData`] error, at the first line
/// longer than [`MAX_LINE_BYTES`], so that a line reader or CSV parser over it holds at most
/// that much of one line.
pub struct LineBounded<R> {
    inner: R,
    /// Bytes since the last line break.
    line_bytes: usize,
}

impl<R: Read> LineBounded<R> {
    /// Bounds the lines of `inner`.
    pub fn new(inner: R) -> Self {
        Self { inner, line_bytes: 0 }
    }
}

impl<R: Read> Read for LineBounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // Never read past the point where the current line would overflow.
        let room = MAX_LINE_BYTES + 1 - self.line_bytes;
        let len = buf.len().min(room);
        let n = self.inner.read(&mut buf[..len])?;
        for &byte in &buf[..n] {
            self.line_bytes = if byte == b'\n' { 0 } else { self.line_bytes + 1 };
            if self.line_bytes > MAX_LINE_BYTES {
                return Err(line_too_long());
            }
        }
        Ok(n)
    }
}

/// The error of a line over [`MAX_LINE_BYTES`].
#[derive(Debug)]
pub struct LineTooLong;

impl std::fmt::Display for LineTooLong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "a line longer than {} MiB: split it into several records",
            MAX_LINE_BYTES >> 20
        )
    }
}

impl std::error::Error for LineTooLong {}

impl LineTooLong {
    /// Whether `error` is a [`LineTooLong`] (from [`LineBounded`]).
    pub fn is(error: &std::io::Error) -> bool {
        error.get_ref().is_some_and(|inner| inner.is::<Self>())
    }
}

/// What a failed read of a record file's line says: the bound it passed, or that the file is
/// not UTF-8 text.
pub fn line_error(error: &std::io::Error) -> String {
    match LineTooLong::is(error) {
        true => error.to_string(),
        false => format!("{error}: give a UTF-8 text file"),
    }
}

fn line_too_long() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, LineTooLong)
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;

    use super::*;

    #[test]
    fn lines_up_to_the_bound_pass_and_a_longer_one_fails_without_being_held() {
        let fits = format!("{}\nshort\n", "a".repeat(MAX_LINE_BYTES));
        let lines: Vec<String> = std::io::BufReader::new(LineBounded::new(fits.as_bytes()))
            .lines()
            .collect::<std::io::Result<_>>()
            .unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].len(), MAX_LINE_BYTES);

        let long = format!("ok\n{}\n", "b".repeat(MAX_LINE_BYTES + 1));
        let mut reader = std::io::BufReader::new(LineBounded::new(long.as_bytes())).lines();
        assert_eq!(reader.next().unwrap().unwrap(), "ok");
        let error = reader.next().unwrap().unwrap_err();
        assert!(LineTooLong::is(&error));
        assert!(error.to_string().contains("longer than 1 MiB"), "{error}");
    }
}
