//! Byte sizes written as daprd writes them (Kubernetes quantities): `4Mi`, `512Ki`, `1G`, `4096`.

/// Parses a byte size: an integer with an optional suffix `Ki`, `Mi`, `Gi`, `Ti` (powers of
/// 1024) or `k`, `M`, `G`, `T` (powers of 1000).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(digits_end);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid size {text:?}: expected a number like 4Mi or 4096"))?;
    let multiplier: u64 = match suffix {
        "" => 1,
        "Ki" => 1 << 10,
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "k" => 1_000,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => {
            return Err(format!(
                "invalid size {text:?}: unknown suffix {suffix:?} (use Ki, Mi, Gi, Ti, k, M, G or T)"
            ));
        }
    };
    number
        .checked_mul(multiplier)
        .ok_or_else(|| format!("invalid size {text:?}: too large"))
}

#[cfg(test)]
mod tests {
    use super::parse_bytes;

    #[test]
    fn binary_decimal_and_plain_sizes() {
        assert_eq!(parse_bytes("4Mi"), Ok(4 * 1024 * 1024));
        assert_eq!(parse_bytes("512Ki"), Ok(512 * 1024));
        assert_eq!(parse_bytes("1Gi"), Ok(1 << 30));
        assert_eq!(parse_bytes("2k"), Ok(2000));
        assert_eq!(parse_bytes("3M"), Ok(3_000_000));
        assert_eq!(parse_bytes(" 4096 "), Ok(4096));
        assert_eq!(parse_bytes("0"), Ok(0));
    }

    #[test]
    fn rejects_junk_and_overflow() {
        for bad in [
            "",
            "Mi",
            "4MB",
            "-1",
            "1.5Mi",
            "4 Mi",
            "99999999999999999999",
        ] {
            assert!(parse_bytes(bad).is_err(), "{bad}");
        }
        assert!(parse_bytes("99999999Ti").unwrap_err().contains("too large"));
    }
}
