//! Finding the end of an HTTP head as it arrives, each byte looked at once.
//!
//! The handshake readers parse a head only when its blank line has
//! arrived (or it outgrew the limit), so a head dripped a byte at a time
//! costs O(n), not a parse from the start per read. Line endings must be
//! CRLF: RFC 9112 §2.2 lets a recipient accept a bare LF, and hubbub
//! refuses it instead (400 on the server, naming it), in the upgrade
//! request and in the HTTP routes alike, so that no proxy in front can
//! read a different head than we do.

/// How far a head has been scanned: feed it the growing buffer after each
/// read and it looks only at the bytes it has not seen, so finding the end
/// of a head dripped a byte at a time is O(n).
#[derive(Debug, Default, Clone)]
pub struct HeadScan {
    /// Bytes of the buffer already looked at.
    scanned: usize,
    /// Every byte looked at, over the whole head (for the tests).
    #[cfg(test)]
    examined: usize,
}

/// A line ended with LF alone (refused: lines end with CRLF).
#[derive(Debug, PartialEq, Eq)]
pub struct BareLf;

impl HeadScan {
    /// Look at the bytes of `buf` (everything received so far, a prefix
    /// of it having been passed before) not seen yet. `Ok(Some(len))`:
    /// the head ends at `len` (its blank line included).
    pub fn feed(&mut self, buf: &[u8]) -> Result<Option<usize>, BareLf> {
        let start = self.scanned.min(buf.len());
        #[cfg(test)]
        {
            self.examined += buf.len() - start;
        }
        self.scanned = buf.len();
        for (i, &byte) in buf.iter().enumerate().skip(start) {
            if byte != b'\n' {
                continue;
            }
            if i == 0 || buf[i - 1] != b'\r' {
                return Err(BareLf);
            }
            if i >= 3 && &buf[i - 3..i - 1] == b"\r\n" {
                self.scanned = i + 1;
                return Ok(Some(i + 1));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An 8 KiB head fed a byte at a time: every byte looked at once.
    #[test]
    fn a_dripped_head_is_scanned_once() {
        let mut head = b"GET /chat HTTP/1.1\r\nHost: x\r\n".to_vec();
        while head.len() < 8 << 10 {
            head.extend_from_slice(b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        head.extend_from_slice(b"\r\n");
        let mut scan = HeadScan::default();
        let mut found = None;
        for end in 1..=head.len() {
            found = scan.feed(&head[..end]).unwrap();
            assert_eq!(found.is_some(), end == head.len(), "at {end}");
        }
        assert_eq!(found, Some(head.len()));
        assert_eq!(scan.examined, head.len());
    }

    #[test]
    fn bare_lf_is_refused_wherever_it_is() {
        for head in [
            &b"GET / HTTP/1.1\nHost: x\r\n\r\n"[..],
            b"GET / HTTP/1.1\r\nHost: x\n\r\n",
            b"GET / HTTP/1.1\r\nHost: x\r\n\n",
            b"\n",
        ] {
            assert_eq!(HeadScan::default().feed(head), Err(BareLf));
        }
        let good = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nafter\n";
        assert_eq!(HeadScan::default().feed(good), Ok(Some(good.len() - 6)));
    }
}
