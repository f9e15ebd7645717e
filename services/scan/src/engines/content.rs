//! One streaming pass over a stream of bytes: YARA-X and the sensitive-data patterns see it in
//! 1 MiB blocks that overlap by 4 KiB (so a pattern across a boundary is whole in one block),
//! with the SHA-256 and the first bytes (for the true type) taken on the way. Memory stays at one
//! block whatever the stream's length.

use std::io::{self, Read, Write};

use sha2::{Digest as _, Sha256};

use super::Finding;
use super::sensitive::{Patterns, Seen};
use super::yara::{BlockScan, Ruleset};

pub const BLOCK: usize = 1 << 20;
/// Longer than any pattern we ship or accept (a PEM header, a card number, a YARA string).
pub const OVERLAP: usize = 4096;
/// Bytes kept from the start of the stream for the true-type check.
pub const HEAD: usize = 4096;

/// What a pass learned besides its findings.
#[derive(Debug)]
pub struct Summary {
    pub bytes: u64,
    pub sha256: Option<[u8; 32]>,
    pub head: Vec<u8>,
}

pub struct Pass<'e> {
    yara: BlockScan<'e>,
    patterns: &'e Patterns,
    seen: Seen,
    buf: Vec<u8>,
    /// Bytes in `buf`; the first `kept` of them were already scanned (the overlap).
    len: usize,
    kept: usize,
    /// Stream offset of `buf[0]`.
    base: u64,
    bytes: u64,
    sha: Option<Sha256>,
    head: Vec<u8>,
}

impl<'e> Pass<'e> {
    pub fn new(rules: &'e Ruleset, patterns: &'e Patterns, hash: bool) -> Pass<'e> {
        Pass {
            yara: rules.block_scanner(),
            patterns,
            seen: Seen::default(),
            buf: vec![0; BLOCK + OVERLAP],
            len: 0,
            kept: 0,
            base: 0,
            bytes: 0,
            sha: hash.then(Sha256::new),
            head: Vec::new(),
        }
    }

    /// Reads `input` to its end, or until more than `limit` bytes came (then returns
    /// `Ok(false)`: the caller decides what an over-long stream means). Every byte read is also
    /// written to `tee` when one is given.
    pub fn read_from(
        &mut self,
        input: &mut dyn Read,
        limit: u64,
        mut tee: Option<&mut dyn Write>,
    ) -> io::Result<bool> {
        loop {
            if self.len == self.buf.len() {
                self.scan_block()?;
            }
            let n = match input.read(&mut self.buf[self.len..]) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            let new = &self.buf[self.len..self.len + n];
            if let Some(sha) = &mut self.sha {
                sha.update(new);
            }
            if self.head.len() < HEAD {
                let take = (HEAD - self.head.len()).min(n);
                self.head.extend_from_slice(&new[..take]);
            }
            if let Some(t) = tee.as_deref_mut() {
                t.write_all(new)?;
            }
            self.len += n;
            self.bytes += n as u64;
            if self.bytes > limit {
                return Ok(false);
            }
        }
    }

    /// Scans the buffer and keeps its last `OVERLAP` bytes at its front.
    fn scan_block(&mut self) -> io::Result<()> {
        let data = &self.buf[..self.len];
        self.yara.feed(self.base, data).map_err(io::Error::other)?;
        self.patterns.scan(data, &mut self.seen);
        let keep = OVERLAP.min(self.len);
        self.buf.copy_within(self.len - keep..self.len, 0);
        self.base += (self.len - keep) as u64;
        self.len = keep;
        self.kept = keep;
        Ok(())
    }

    /// Scans what is left and adds the findings.
    pub fn finish(mut self, findings: &mut Vec<Finding>) -> io::Result<Summary> {
        if self.len > self.kept || self.bytes == 0 {
            self.scan_block()?;
        }
        self.yara.finish(findings).map_err(io::Error::other)?;
        self.seen.finish(findings);
        Ok(Summary {
            bytes: self.bytes,
            sha256: self.sha.map(|s| s.finalize().into()),
            head: self.head,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hands out at most `n` bytes per read, to exercise partial reads.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
            let n = self.0.len().min(self.1).min(out.len());
            out[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    #[test]
    fn finds_patterns_anywhere_in_a_long_stream_and_hashes_it() {
        let rules = Ruleset::load(None).unwrap();
        let patterns = Patterns::new();
        let e = crate::engines::yara::tests::eicar();
        let key = b"-----BEGIN PRIVATE KEY-----";
        // Put each pattern across a block boundary.
        let mut data = vec![b'.'; 3 * BLOCK + 100];
        data[BLOCK - 10..BLOCK - 10 + e.len()].copy_from_slice(&e);
        data[2 * BLOCK - 3 * OVERLAP - 5..2 * BLOCK - 3 * OVERLAP - 5 + key.len()]
            .copy_from_slice(key);
        for chunk in [7, 65_536, 3 * BLOCK] {
            let mut pass = Pass::new(&rules, &patterns, true);
            let mut tee = Vec::new();
            assert!(
                pass.read_from(&mut Trickle(&data, chunk), u64::MAX, Some(&mut tee))
                    .unwrap()
            );
            let mut f = Vec::new();
            let s = pass.finish(&mut f).unwrap();
            assert_eq!(s.bytes, data.len() as u64);
            assert_eq!(s.sha256.unwrap(), <[u8; 32]>::from(Sha256::digest(&data)));
            assert_eq!(tee, data);
            assert_eq!(s.head.len(), HEAD);
            let mut sigs: Vec<_> = f.into_iter().map(|f| f.signature).collect();
            sigs.sort();
            assert_eq!(
                sigs,
                ["eicar_test_file", "pem-private-key"],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn stops_past_the_limit_and_handles_empty_input() {
        let rules = Ruleset::load(None).unwrap();
        let patterns = Patterns::new();
        let mut pass = Pass::new(&rules, &patterns, false);
        assert!(!pass.read_from(&mut &[0u8; 100][..], 10, None).unwrap());
        let mut pass = Pass::new(&rules, &patterns, true);
        assert!(pass.read_from(&mut &b""[..], 10, None).unwrap());
        let mut f = Vec::new();
        let s = pass.finish(&mut f).unwrap();
        assert_eq!(s.bytes, 0);
        assert!(f.is_empty());
    }
}
