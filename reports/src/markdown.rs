//! Markdown output: tables and the number formats every section uses.

use std::fmt::Write as _;

use crate::model::Table;

/// The table as GitHub-flavoured markdown (pipes in cells escaped).
pub fn table(table: &Table) -> String {
    let escape = |cell: &str| cell.replace('|', "\\|");
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {} |",
        table.headers.iter().map(|h| escape(h)).collect::<Vec<_>>().join(" | ")
    );
    let _ = writeln!(out, "|{}", table.headers.iter().map(|_| "---|").collect::<String>());
    for row in &table.rows {
        let _ = writeln!(
            out,
            "| {} |",
            row.iter().map(|c| escape(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    out
}

/// Bytes in binary units: `512 B`, `64.0 KiB`, `5.25 MiB`, `10.00 GiB`.
pub fn bytes(n: u64) -> String {
    const UNITS: [(&str, u64); 3] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)];
    for (unit, size) in UNITS {
        if n >= size {
            let value = n as f64 / size as f64;
            return if unit == "KiB" {
                format!("{value:.1} {unit}")
            } else {
                format!("{value:.2} {unit}")
            };
        }
    }
    format!("{n} B")
}

/// Bytes per second as MB/s (decimal), or GB/s from 10 GB/s up.
pub fn rate(bps: f64) -> String {
    if bps >= 10e9 {
        format!("{:.1} GB/s", bps / 1e9)
    } else {
        format!("{:.0} MB/s", bps / 1e6)
    }
}

/// Microseconds as milliseconds with two decimals.
pub fn millis(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

/// A Unix time as `YYYY-MM-DD HH:MM UTC`.
pub fn date(unix_s: u64) -> String {
    let days = i64::try_from(unix_s / 86_400).unwrap_or(0);
    let secs = unix_s % 86_400;
    // Civil date from days since 1970-01-01 (proleptic Gregorian).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use expect_test::expect;

    #[test]
    fn tables_render_as_markdown() {
        let mut t = Table::new(["size", "peak | RSS"]);
        t.row(["100 MiB", "5.00 MiB"]);
        t.row(["1 GiB", "5.10 MiB"]);
        expect![[r#"
            | size | peak \| RSS |
            |---|---|
            | 100 MiB | 5.00 MiB |
            | 1 GiB | 5.10 MiB |
        "#]]
        .assert_eq(&table(&t));
    }

    #[test]
    fn units_and_dates() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(64 << 10), "64.0 KiB");
        assert_eq!(bytes(10 << 30), "10.00 GiB");
        assert_eq!(rate(1.5e9), "1500 MB/s");
        assert_eq!(rate(14.2e9), "14.2 GB/s");
        assert_eq!(millis(4321), "4.32 ms");
        assert_eq!(date(0), "1970-01-01 00:00 UTC");
        assert_eq!(date(1_709_210_096), "2024-02-29 12:34 UTC");
    }
}
