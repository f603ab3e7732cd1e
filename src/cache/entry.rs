//! A cached response body and what is needed to serve it, and its self-checking disk format.
//!
//! On disk: magic, a small header (content type, ETag, creation time, body length, blake3 of
//! the body), then the body. [`Entry::decode`] refuses anything that does not check out exactly
//! (wrong magic or version, truncated, trailing bytes, checksum mismatch), so a half-written or
//! bit-flipped file is never served. Pure: no I/O.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

/// Magic and format version; a new layout gets a new last byte.
const MAGIC: &[u8; 8] = b"IMGCDN\x00\x01";
/// Header fields are short; a larger header means the file is not ours.
const MAX_FIELD: usize = 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub body: Bytes,
    pub content_type: String,
    /// The quoted strong ETag sent with the body.
    pub etag: String,
    /// Unix seconds when the body was made.
    pub created: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("corrupt cache entry: {0}")]
pub struct Corrupt(&'static str);

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl Entry {
    pub fn new(body: Bytes, content_type: &str, etag: &str) -> Self {
        Entry {
            body,
            content_type: content_type.to_owned(),
            etag: etag.to_owned(),
            created: now_secs(),
        }
    }

    /// Seconds since the entry was made.
    pub fn age(&self) -> u64 {
        now_secs().saturating_sub(self.created)
    }

    pub fn expired(&self, ttl: Duration) -> bool {
        self.age() >= ttl.as_secs()
    }

    /// Bytes this entry takes in memory, for the weigher.
    pub fn weight(&self) -> u32 {
        let n = self.body.len() + self.content_type.len() + self.etag.len() + 64;
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// The whole file: [`Entry::header`] then the body.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = self.header();
        out.extend_from_slice(&self.body);
        out
    }

    /// Everything the file holds before the body (the checksum covers both), so the body can
    /// be written from where it already is, without a copy.
    pub fn header(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.extend_from_slice(MAGIC);
        for field in [self.content_type.as_bytes(), self.etag.as_bytes()] {
            let field = &field[..field.len().min(MAX_FIELD)];
            out.extend_from_slice(&(field.len() as u16).to_le_bytes());
            out.extend_from_slice(field);
        }
        out.extend_from_slice(&self.created.to_le_bytes());
        out.extend_from_slice(&(self.body.len() as u64).to_le_bytes());
        let checksum = checksum(&out, &self.body);
        out.extend_from_slice(checksum.as_bytes());
        out
    }

    pub fn decode(data: Bytes) -> Result<Entry, Corrupt> {
        let mut r = Reader { data: &data, at: 0 };
        if r.take(MAGIC.len())? != MAGIC {
            return Err(Corrupt("bad magic or version"));
        }
        let content_type = r.field()?;
        let etag = r.field()?;
        let created = r.u64()?;
        let len = usize::try_from(r.u64()?).map_err(|_| Corrupt("length"))?;
        let header_end = r.at;
        let stored: [u8; 32] = r.take(32)?.try_into().map_err(|_| Corrupt("checksum"))?;
        let start = r.at;
        if data.len().checked_sub(start) != Some(len) {
            return Err(Corrupt("length does not match the file"));
        }
        let body = data.slice(start..);
        let header = data.get(..header_end).ok_or(Corrupt("truncated"))?;
        if checksum(header, &body) != blake3::Hash::from_bytes(stored) {
            return Err(Corrupt("checksum mismatch"));
        }
        Ok(Entry {
            body,
            content_type,
            etag,
            created,
        })
    }
}

/// The checksum covers the header fields too, so no flipped bit anywhere goes unnoticed.
fn checksum(header: &[u8], body: &[u8]) -> blake3::Hash {
    let mut h = blake3::Hasher::new();
    h.update(header);
    h.update(body);
    h.finalize()
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Corrupt> {
        let end = self.at.checked_add(n).ok_or(Corrupt("length"))?;
        let slice = self.data.get(self.at..end).ok_or(Corrupt("truncated"))?;
        self.at = end;
        Ok(slice)
    }

    fn u64(&mut self) -> Result<u64, Corrupt> {
        let b: [u8; 8] = self.take(8)?.try_into().map_err(|_| Corrupt("truncated"))?;
        Ok(u64::from_le_bytes(b))
    }

    fn field(&mut self) -> Result<String, Corrupt> {
        let b: [u8; 2] = self.take(2)?.try_into().map_err(|_| Corrupt("truncated"))?;
        let n = usize::from(u16::from_le_bytes(b));
        if n > MAX_FIELD {
            return Err(Corrupt("header field too long"));
        }
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| Corrupt("header not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Entry {
        Entry::new(
            Bytes::from_static(b"\xff\xd8 some image bytes"),
            "image/jpeg",
            "\"abc\"",
        )
    }

    #[test]
    fn entry_round_trips() {
        let e = sample();
        assert_eq!(Entry::decode(Bytes::from(e.encode())), Ok(e));
    }

    #[test]
    fn entry_every_truncation_is_refused() {
        let data = sample().encode();
        for n in 0..data.len() {
            assert!(
                Entry::decode(Bytes::copy_from_slice(&data[..n])).is_err(),
                "length {n}"
            );
        }
    }

    #[test]
    fn entry_every_bit_flip_is_refused() {
        let data = sample().encode();
        for i in 0..data.len() {
            for bit in [0x01u8, 0x80] {
                let mut bad = data.clone();
                bad[i] ^= bit;
                assert!(
                    Entry::decode(Bytes::from(bad)).is_err(),
                    "byte {i} bit {bit}"
                );
            }
        }
    }

    #[test]
    fn entry_trailing_bytes_are_refused() {
        let mut data = sample().encode();
        data.push(0);
        assert!(Entry::decode(Bytes::from(data)).is_err());
    }

    #[test]
    fn entry_expiry_uses_creation_time() {
        let mut e = sample();
        assert!(!e.expired(Duration::from_secs(60)));
        e.created -= 120;
        assert!(e.expired(Duration::from_secs(60)));
        assert!(e.age() >= 120);
    }
}
