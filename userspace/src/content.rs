// SPDX-License-Identifier: GPL-2.0

//! The buffer's initial content: page i starts with `mapdrv page <i>\n`, the
//! rest of the page is zero.

use std::hash::{DefaultHasher, Hasher};

/// The line the driver writes at the start of page `index`.
pub fn header(index: usize) -> String {
    format!("mapdrv page {index}\n")
}

/// Checks one page against the pattern, saying where it differs.
pub fn check_page(index: usize, page: &[u8]) -> Result<(), String> {
    let h = header(index);
    let start = &page[..h.len().min(page.len())];
    if start != h.as_bytes() {
        let shown = &page[..(h.len() + 8).min(page.len())];
        return Err(format!(
            "page {index} starts with \"{}\", expected \"{}\"",
            shown.escape_ascii(),
            h.as_bytes().escape_ascii()
        ));
    }
    match page[h.len()..].iter().position(|&b| b != 0) {
        None => Ok(()),
        Some(i) => {
            let at = h.len() + i;
            Err(format!(
                "page {index}: byte {at:#x} is {:#04x}, expected 0 after the header",
                page[at]
            ))
        }
    }
}

/// The text the kernel put at the start of a page: the bytes before the first
/// zero byte.
pub fn page_text(page: &[u8]) -> &[u8] {
    let end = page.iter().position(|&b| b == 0).unwrap_or(page.len());
    &page[..end]
}

/// `page_text` for a terminal: printable ASCII, newlines and tabs as they
/// are, anything else escaped (`\xNN`); always ends with a newline.
pub fn printable_text(page: &[u8]) -> String {
    let mut out = String::new();
    for &b in page_text(page) {
        match b {
            b'\n' | b'\t' | 0x20..=0x7e => out.push(char::from(b)),
            _ => out.extend(std::ascii::escape_default(b).map(char::from)),
        }
    }
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A fingerprint of a page, to compare what different readers saw.
pub fn page_hash(page: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    h.write(page);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The whole expected page `index`.
    fn expected_page(index: usize, page_size: usize) -> Vec<u8> {
        let mut page = vec![0u8; page_size];
        let h = header(index);
        page[..h.len()].copy_from_slice(h.as_bytes());
        page
    }

    #[test]
    fn expected_pages_pass_the_check() {
        for i in [0, 1, 9, 10, 262_143] {
            let p = expected_page(i, 4096);
            assert!(p.starts_with(format!("mapdrv page {i}\n").as_bytes()));
            assert_eq!(check_page(i, &p), Ok(()));
        }
    }

    #[test]
    fn wrong_header_is_reported() {
        let p = expected_page(4, 4096);
        let err = check_page(3, &p).unwrap_err();
        assert!(err.contains(r#"starts with "mapdrv page 4\n"#), "{err}");
        assert!(err.contains(r#"expected "mapdrv page 3\n""#), "{err}");
    }

    #[test]
    fn stray_byte_is_reported_with_its_offset() {
        let mut p = expected_page(2, 4096);
        p[4095] = 0x41;
        assert_eq!(
            check_page(2, &p).unwrap_err(),
            "page 2: byte 0xfff is 0x41, expected 0 after the header"
        );
    }

    #[test]
    fn short_or_zero_page_fails() {
        assert!(check_page(0, b"mapdrv").is_err());
        assert!(check_page(0, &[0u8; 4096]).is_err());
    }

    #[test]
    fn text_stops_at_the_first_zero() {
        let p = expected_page(7, 64);
        assert_eq!(page_text(&p), b"mapdrv page 7\n");
        assert_eq!(printable_text(&p), "mapdrv page 7\n");
        assert_eq!(page_text(b"abc"), b"abc");
    }

    #[test]
    fn unprintable_text_is_escaped() {
        assert_eq!(printable_text(b"a\x01b\xff\0zz"), "a\\x01b\\xff\n");
        assert_eq!(printable_text(&[0u8; 8]), "\n");
    }

    #[test]
    fn hash_tells_pages_apart() {
        let a = expected_page(1, 4096);
        let b = expected_page(2, 4096);
        assert_eq!(page_hash(&a), page_hash(&a.clone()));
        assert_ne!(page_hash(&a), page_hash(&b));
    }
}
