//! The first IFD of an EXIF (TIFF) block, read by hand. The only tags imgcdn reads
//! (`Orientation`, `Artist`, `Copyright`) live in IFD0, so no other IFD is ever followed: a
//! general EXIF reader walks every pointer to a child IFD, and overlapping children turn a
//! 64 KiB block into hundreds of MB of entries. Here the work is one pass over at most
//! `(len - 10) / 12` entries, and every value is a slice of the block: nothing is allocated
//! by a declared count.

/// One IFD0 entry's type and value bytes.
struct Field<'a> {
    kind: u16,
    value: &'a [u8],
}

/// The entry `tag` of IFD0, if the block is a TIFF header and the entry's value lies inside it.
fn field(tiff: &[u8], tag: u16) -> Option<(Field<'_>, bool)> {
    let le = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = tiff.get(at..at.checked_add(2)?)?;
        Some(if le {
            u16::from_le_bytes([b[0], b[1]])
        } else {
            u16::from_be_bytes([b[0], b[1]])
        })
    };
    let u32_at = |at: usize| -> Option<u32> {
        let b = tiff.get(at..at.checked_add(4)?)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    };
    let ifd = u32_at(4)? as usize;
    let count = usize::from(u16_at(ifd)?);
    for i in 0..count {
        let entry = ifd.checked_add(2 + 12 * i)?;
        // Entries past the end of the block end the walk.
        let id = u16_at(entry)?;
        if id != tag {
            continue;
        }
        let kind = u16_at(entry + 2)?;
        let n = u32_at(entry + 4)? as usize;
        let unit = match kind {
            1 | 2 | 6 | 7 => 1,
            3 | 8 => 2,
            4 | 9 | 11 => 4,
            5 | 10 | 12 => 8,
            _ => return None,
        };
        let size = n.checked_mul(unit)?;
        let value = if size <= 4 {
            tiff.get(entry + 8..entry + 8 + size)?
        } else {
            let at = u32_at(entry + 8)? as usize;
            tiff.get(at..at.checked_add(size)?)?
        };
        return Some((Field { kind, value }, le));
    }
    None
}

/// The `Orientation` tag (0x0112) of IFD0, as written (1-8 when valid).
pub(crate) fn orientation(tiff: &[u8]) -> Option<u32> {
    number(tiff, 0x0112)
}

/// The first value of a BYTE, SHORT or LONG tag of IFD0.
pub(crate) fn number(tiff: &[u8], tag: u16) -> Option<u32> {
    let (f, le) = field(tiff, tag)?;
    let v = f.value;
    match f.kind {
        1 => v.first().map(|&b| u32::from(b)),
        3 => {
            let b = [*v.first()?, *v.get(1)?];
            Some(u32::from(if le {
                u16::from_le_bytes(b)
            } else {
                u16::from_be_bytes(b)
            }))
        }
        4 => {
            let b = [*v.first()?, *v.get(1)?, *v.get(2)?, *v.get(3)?];
            Some(if le {
                u32::from_le_bytes(b)
            } else {
                u32::from_be_bytes(b)
            })
        }
        _ => None,
    }
}

/// How many values IFD0's entry `tag` declares (without reading them), if it has the entry.
pub(crate) fn declared_count(tiff: &[u8], tag: u16) -> Option<u32> {
    let le = match tiff.get(0..4)? {
        b"II*\0" => true,
        b"MM\0*" => false,
        _ => return None,
    };
    let u16_at = |at: usize| -> Option<u16> {
        let b = [*tiff.get(at)?, *tiff.get(at.checked_add(1)?)?];
        Some(if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    };
    let b = tiff.get(4..8)?;
    let b = [b[0], b[1], b[2], b[3]];
    let ifd = if le {
        u32::from_le_bytes(b)
    } else {
        u32::from_be_bytes(b)
    } as usize;
    let count = usize::from(u16_at(ifd)?);
    (0..count).find_map(|i| {
        let entry = ifd.checked_add(2 + 12 * i)?;
        if u16_at(entry)? != tag {
            return None;
        }
        let b = tiff.get(entry + 4..entry + 8)?;
        let b = [b[0], b[1], b[2], b[3]];
        Some(if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    })
}

/// An ASCII tag of IFD0 (e.g. `Artist` 0x013B, `Copyright` 0x8298) without its trailing NULs;
/// inner NULs (Copyright's "photographer\0editor") are kept.
pub(crate) fn ascii(tiff: &[u8], tag: u16) -> Option<&[u8]> {
    let (f, _) = field(tiff, tag)?;
    if f.kind != 2 {
        return None;
    }
    let end = f.value.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    Some(&f.value[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A TIFF block with one IFD0 of `(tag, type, count, value-or-offset bytes)` entries,
    /// then `tail` (for values stored out of line).
    fn tiff(le: bool, entries: &[(u16, u16, u32, [u8; 4])], tail: &[u8]) -> Vec<u8> {
        let w16 = |v: u16| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let w32 = |v: u32| if le { v.to_le_bytes() } else { v.to_be_bytes() };
        let mut out = if le {
            b"II*\0".to_vec()
        } else {
            b"MM\0*".to_vec()
        };
        out.extend(w32(8));
        out.extend(w16(entries.len() as u16));
        for (tag, kind, n, v) in entries {
            out.extend(w16(*tag));
            out.extend(w16(*kind));
            out.extend(w32(*n));
            out.extend(v);
        }
        out.extend(w32(0));
        out.extend_from_slice(tail);
        out
    }

    #[test]
    fn tiff_orientation_in_either_byte_order() {
        let le = tiff(true, &[(0x0112, 3, 1, [6, 0, 0, 0])], &[]);
        assert_eq!(orientation(&le), Some(6));
        let be = tiff(false, &[(0x0112, 3, 1, [0, 8, 0, 0])], &[]);
        assert_eq!(orientation(&be), Some(8));
        assert_eq!(orientation(&tiff(true, &[], &[])), None);
        assert_eq!(orientation(b"not tiff"), None);
    }

    #[test]
    fn tiff_ascii_out_of_line_and_bounded_by_the_block() {
        // 8 header + 2 count + 12 entry + 4 next = offset 26.
        let t = tiff(true, &[(0x8298, 2, 8, [26, 0, 0, 0])], b"a\0b-cde\0");
        assert_eq!(ascii(&t, 0x8298), Some(&b"a\0b-cde"[..]));
        // A count running past the block is no value, not a read past it.
        let t = tiff(true, &[(0x8298, 2, u32::MAX, [26, 0, 0, 0])], b"x");
        assert_eq!(ascii(&t, 0x8298), None);
        let t = tiff(true, &[(0x013B, 2, 3, *b"Jo\0\0")], &[]);
        assert_eq!(ascii(&t, 0x013B), Some(&b"Jo"[..]));
    }

    #[test]
    fn tiff_entry_count_larger_than_the_block_ends_quietly() {
        let mut t = tiff(true, &[(0x0100, 3, 1, [1, 0, 0, 0])], &[]);
        t[8] = 0xFF;
        t[9] = 0xFF;
        assert_eq!(orientation(&t), None);
    }
}
