//! Line numbers of skipped rows, for the `file:line` of the report.
//!
//! The csv reader's own line count is off with CRLF line ends and blank lines, but the byte
//! offset it gives for a record is reliable up to where the line ends before it: it lies
//! between the end of the previous record and the record's first byte. So the line of a
//! record is found by counting the `\n`s in the file before its first byte, where line ends
//! after the given offset are skipped over first.
//!
//! Design constraints: costs nothing until a row is skipped; then a second handle reads the
//! file forward only, from the previous skipped row on (offsets only grow), so all the
//! skipped rows of a file together cost one more read of it at most.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::Path;

/// A forward-only reader counting line ends.
#[derive(Default)]
pub struct LineCounter {
    file: Option<BufReader<File>>,
    /// Bytes consumed so far.
    pos: u64,
    /// `\n`s among them.
    newlines: u64,
}

impl LineCounter {
    /// The 1-based line of the record of `path` whose csv byte offset is `byte`; 0 when the
    /// file cannot be read again.
    pub fn line_of(&mut self, path: &Path, byte: u64) -> u64 {
        if self.file.is_none() {
            match File::open(path) {
                Ok(f) => self.file = Some(BufReader::new(f)),
                Err(_) => return 0,
            }
        }
        let Some(r) = self.file.as_mut() else {
            return 0;
        };
        loop {
            let buf = match r.fill_buf() {
                Ok(b) if !b.is_empty() => b,
                _ => break, // end of file (or a failed read): the best count so far
            };
            let mut used = 0;
            let mut done = false;
            for &b in buf {
                if self.pos + used as u64 >= byte && b != b'\n' && b != b'\r' {
                    done = true;
                    break;
                }
                if b == b'\n' {
                    self.newlines += 1;
                }
                used += 1;
            }
            r.consume(used);
            self.pos += used as u64;
            if done {
                break;
            }
        }
        self.newlines + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every record's line as the csv reader's offsets place it.
    fn lines(text: &str) -> Vec<u64> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f.csv");
        std::fs::write(&p, text).unwrap();
        let mut rdr = ::csv::ReaderBuilder::new()
            .delimiter(b';')
            .from_reader(text.as_bytes());
        let mut rec = ::csv::StringRecord::new();
        let mut count = LineCounter::default();
        let mut out = Vec::new();
        while rdr.read_record(&mut rec).unwrap() {
            let byte = rec.position().unwrap().byte();
            out.push(count.line_of(&p, byte));
        }
        out
    }

    #[test]
    fn lines_are_right_with_lf_crlf_and_blank_lines() {
        assert_eq!(lines("h;a\nr1;1\nr2;2\n\nr3;3"), vec![2, 3, 5]);
        assert_eq!(lines("h;a\r\nr1;1\r\nr2;2\r\n\r\nr3;3\r\n"), vec![2, 3, 5]);
        assert_eq!(lines("h;a\n\n\nr1;1\n\"q\nq\";2\nr3;3\n"), vec![4, 5, 7]);
    }
}
