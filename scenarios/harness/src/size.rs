//! Byte sizes on command lines (`32KiB`, `1GiB`, `4096`), parsed the same
//! way by every binary of the lab.

/// Parses a byte size with binary units (`KiB`, `MiB`, `GiB`; `K` is read
/// as 1,024 too); zero is refused. The error is a sentence for a
/// command-line parser to print.
///
/// ```
/// assert_eq!(weir_harness::parse_bytes("32KiB"), Ok(32 * 1024));
/// assert!(weir_harness::parse_bytes("0").is_err());
/// ```
///
/// # Errors
///
/// When `text` is not a size, or is zero.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    match parse_size::Config::new().with_binary().parse_size(text) {
        Ok(0) => Err("size must be at least 1 byte".to_owned()),
        Ok(n) => Ok(n),
        Err(error) => Err(format!("{error} (expected e.g. 100MiB, 1GiB, 4096)")),
    }
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn sizes_parse_with_binary_units_and_zero_or_junk_is_refused() {
        assert_eq!(parse_bytes("4096"), Ok(4096));
        assert_eq!(parse_bytes("1MiB"), Ok(1 << 20));
        assert_eq!(parse_bytes("1GiB"), Ok(1 << 30));
        assert!(parse_bytes("0").unwrap_err().contains("at least 1 byte"));
        assert!(parse_bytes("lots").unwrap_err().contains("expected e.g."));
    }
}
