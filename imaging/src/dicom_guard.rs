//! A walk over a DICOM file's element headers before it is parsed: every declared value
//! length must fit in the bytes that follow. The parser allocates a value's declared length
//! before reading it, so a hostile 4 GB length would otherwise cost 4 GB of memory.

/// Transfer syntaxes whose data set is not explicit VR little endian.
const IMPLICIT_VR_LITTLE_ENDIAN: &str = "1.2.840.10008.1.2";
const EXPLICIT_VR_BIG_ENDIAN: &str = "1.2.840.10008.1.2.2";
const DEFLATED: &str = "1.2.840.10008.1.2.1.99";

const UNDEFINED: u32 = 0xFFFF_FFFF;

/// VRs whose explicit header has 2 reserved bytes and a 4-byte length.
fn long_vr(vr: &[u8]) -> bool {
    matches!(vr, b"OB" | b"OD" | b"OF" | b"OL" | b"OV" | b"OW" | b"SQ" | b"SV" | b"UC" | b"UN" | b"UR" | b"UT" | b"UV")
}

/// Whether the data dictionary says this tag is a sequence (implicit VR has no VR on disk).
fn is_sequence_tag(group: u16, element: u16) -> bool {
    use dicom_core::dictionary::{DataDictionary, DataDictionaryEntry, VirtualVr};
    dicom_dictionary_std::StandardDataDictionary
        .by_tag(dicom_core::Tag(group, element))
        .is_some_and(|e| e.vr() == VirtualVr::Exact(dicom_core::VR::SQ))
}

struct Walk<'a> {
    bytes: &'a [u8],
    explicit: bool,
    big_endian: bool,
}

impl Walk<'_> {
    fn u16_at(&self, pos: usize) -> u16 {
        let b = [self.bytes[pos], self.bytes[pos + 1]];
        if self.big_endian { u16::from_be_bytes(b) } else { u16::from_le_bytes(b) }
    }

    fn u32_at(&self, pos: usize) -> u32 {
        let b = [self.bytes[pos], self.bytes[pos + 1], self.bytes[pos + 2], self.bytes[pos + 3]];
        if self.big_endian { u32::from_be_bytes(b) } else { u32::from_le_bytes(b) }
    }

    /// Skips the fragment items of encapsulated pixel data (checking each length); returns
    /// the position after the sequence delimiter.
    fn skip_fragments(&self, mut pos: usize, end: usize, tag: &str) -> Result<usize, String> {
        while pos + 8 <= end {
            let (group, element, len) = (self.u16_at(pos), self.u16_at(pos + 2), self.u32_at(pos + 4));
            pos += 8;
            if group != 0xFFFE {
                return Err(format!("encapsulated {tag} holds a non-item element"));
            }
            if element == 0xE0DD {
                return Ok(pos);
            }
            if len as usize > end - pos {
                return Err(format!("a fragment of {tag} declares {len} bytes but only {} follow", end - pos));
            }
            pos += len as usize;
        }
        Ok(end)
    }

    /// Checks the elements in `pos..end`, descending into sequences and items.
    fn check(&self, mut pos: usize, end: usize, depth: usize) -> Result<(), String> {
        if depth > 32 {
            return Err("sequences nested more than 32 deep".into());
        }
        while pos + 8 <= end {
            let (group, element) = (self.u16_at(pos), self.u16_at(pos + 2));
            let tag = format!("({group:04X},{element:04X})");
            let (len, header, sequence, raw_items) = if group == 0xFFFE {
                // Items and delimiters: no VR in any transfer syntax.
                (self.u32_at(pos + 4), 8, element == 0xE000, false)
            } else if self.explicit {
                let vr = &self.bytes[pos + 4..pos + 6];
                if long_vr(vr) {
                    if pos + 12 > end {
                        return Err(format!("element {tag} is cut short"));
                    }
                    (self.u32_at(pos + 8), 12, vr == b"SQ", vr != b"SQ")
                } else {
                    (self.u16_at(pos + 6) as u32, 8, false, false)
                }
            } else {
                let sequence = is_sequence_tag(group, element);
                (self.u32_at(pos + 4), 8, sequence, !sequence)
            };
            pos += header;
            if len == UNDEFINED {
                if raw_items {
                    // Encapsulated pixel data: items of compressed bytes up to a delimiter.
                    pos = self.skip_fragments(pos, end, &tag)?;
                }
                // A sequence's items and their elements are walked in this same loop.
                continue;
            }
            let remaining = end - pos;
            if len as usize > remaining {
                return Err(format!("element {tag} declares {len} bytes but only {remaining} follow"));
            }
            if sequence {
                self.check(pos, pos + len as usize, depth + 1)?;
            }
            pos += len as usize;
        }
        Ok(())
    }
}

/// `Err` (the reason) when a declared length overruns the file, or the data set is deflated.
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    let (syntax, start) = meta_group(bytes);
    let syntax = syntax.unwrap_or_default();
    if syntax == DEFLATED {
        return Err("deflated transfer syntax is not supported (its inflated size is unbounded)".into());
    }
    Walk { bytes, explicit: true, big_endian: false }.check(132, start, 0)?;
    let walk =
        Walk { bytes, explicit: syntax != IMPLICIT_VR_LITTLE_ENDIAN, big_endian: syntax == EXPLICIT_VR_BIG_ENDIAN };
    walk.check(start, bytes.len(), 0)
}

/// One walk of the file meta group (group 0002, always explicit VR little endian): the
/// transfer syntax UID (0002,0010), if found, and where the group ends.
fn meta_group(bytes: &[u8]) -> (Option<String>, usize) {
    let mut pos = 132;
    let mut syntax = None;
    while pos + 8 <= bytes.len() && bytes[pos..pos + 2] == [0x02, 0x00] {
        let element = u16::from_le_bytes([bytes[pos + 2], bytes[pos + 3]]);
        let vr = &bytes[pos + 4..pos + 6];
        let (len, header) = if long_vr(vr) && pos + 12 <= bytes.len() {
            (u32::from_le_bytes(bytes[pos + 8..pos + 12].try_into().expect("4 bytes")) as usize, 12)
        } else {
            (u16::from_le_bytes([bytes[pos + 6], bytes[pos + 7]]) as usize, 8)
        };
        if element == 0x0010
            && let Some(value) = bytes.get(pos + header..(pos + header).saturating_add(len))
        {
            syntax = Some(String::from_utf8_lossy(value).trim_end_matches(['\0', ' ']).to_string());
        }
        pos = pos.saturating_add(header).saturating_add(len);
    }
    (syntax, pos.min(bytes.len()))
}
