//! Plain-text tables and number formats for terminal output.

/// Renders rows under a header, columns padded to their widest cell and
/// separated by two spaces. Columns listed in `right` are right-aligned.
///
/// Cells are made terminal-safe ([`crate::term::safe_line`]): they often
/// hold text from plugins.
pub fn render(header: &[&str], rows: &[Vec<String>], right: &[usize]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| {
            row.iter()
                .map(|cell| crate::term::safe_line(cell).into_owned())
                .collect()
        })
        .collect();
    let rows = &rows;
    let columns = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(columns) {
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: Vec<&str>| {
        let mut text = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let pad = widths[i].saturating_sub(cell.chars().count());
            if i > 0 {
                text.push_str("  ");
            }
            if right.contains(&i) {
                text.push_str(&" ".repeat(pad));
                text.push_str(cell);
            } else {
                text.push_str(cell);
                if i + 1 < cells.len() {
                    text.push_str(&" ".repeat(pad));
                }
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(header.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
    out
}

/// Milliseconds for people: `0.42 ms`, `12.3 ms`, `1.25 s`, `2m 05s`.
pub fn millis(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 1000.0 {
        format!("{ms:.1} ms")
    } else if ms < 60_000.0 {
        format!("{:.2} s", ms / 1000.0)
    } else {
        let s = (ms / 1000.0).round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

/// Seconds as `45s`, `3m 20s`, `1h 02m`.
pub fn seconds(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        format!("{}h {:02}m", s / 3600, (s % 3600) / 60)
    }
}

/// A fraction as a percentage with one decimal.
pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// `text` cut to `max` characters, with `…` when cut; newlines flattened.
pub fn truncate(text: &str, max: usize) -> String {
    let flat: String = text
        .chars()
        .map(|c| {
            if c == '\n' || c == '\r' || c == '\t' {
                ' '
            } else {
                c
            }
        })
        .collect();
    if flat.chars().count() <= max {
        flat
    } else {
        let mut cut: String = flat.chars().take(max.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let out = render(
            &["NAME", "N"],
            &[
                vec!["a".into(), "10".into()],
                vec!["long-name".into(), "2".into()],
            ],
            &[1],
        );
        assert_eq!(out, "NAME        N\na          10\nlong-name   2\n");
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(millis(0.4213), "0.42 ms");
        assert_eq!(millis(123.45), "123.5 ms");
        assert_eq!(millis(1250.0), "1.25 s");
        assert_eq!(seconds(200.0), "3m 20s");
        assert_eq!(percent(0.4567), "45.7%");
        assert_eq!(truncate("abcdef", 4), "abc…");
    }
}
