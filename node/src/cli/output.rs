//! Human output: aligned tables, `label  value` blocks, JSON cells, timestamps and durations.
//!
//! Tables are plain text: a header row, columns separated by two spaces, no trailing spaces. Cells never span
//! lines: newlines and other control characters are shown escaped. Widths count characters.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value as Json;

/// Space between columns.
const GAP: &str = "  ";

/// A table to print.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers and no rows.
    pub fn new<I, S>(headers: I) -> Table
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let headers: Vec<String> = headers.into_iter().map(Into::into).collect();
        let right = vec![false; headers.len()];
        Table { headers, rows: Vec::new(), right }
    }

    /// Aligns column `column` to the right (numbers).
    pub fn align_right(&mut self, column: usize) {
        if let Some(right) = self.right.get_mut(column) {
            *right = true;
        }
    }

    /// Adds a row; missing cells are empty, extra cells are dropped.
    pub fn push(&mut self, cells: Vec<String>) {
        let mut row: Vec<String> = cells.into_iter().take(self.headers.len()).map(|c| sanitize(&c)).collect();
        row.resize(self.headers.len(), String::new());
        self.rows.push(row);
    }

    /// The table as text, one line per row (header first), without a final newline.
    pub fn render(&self) -> String {
        let headers: Vec<String> = self.headers.iter().map(|h| sanitize(h)).collect();
        let widths: Vec<usize> = (0..headers.len())
            .map(|c| self.rows.iter().map(|r| width(&r[c])).chain([width(&headers[c])]).max().unwrap_or(0))
            .collect();
        let line = |cells: &[String]| {
            let mut out = String::new();
            for (c, cell) in cells.iter().enumerate() {
                if c > 0 {
                    out.push_str(GAP);
                }
                let pad = " ".repeat(widths[c] - width(cell));
                if self.right[c] {
                    out.push_str(&pad);
                    out.push_str(cell);
                } else {
                    out.push_str(cell);
                    out.push_str(&pad);
                }
            }
            out.trim_end().to_string()
        };
        std::iter::once(&headers).chain(&self.rows).map(|r| line(r)).collect::<Vec<_>>().join("\n")
    }
}

/// `label  value` lines with the labels padded to one width; a value spanning lines is indented under the
/// first.
pub(crate) fn key_values(pairs: &[(&str, String)]) -> String {
    let label_width = pairs.iter().map(|(label, _)| width(label)).max().unwrap_or(0);
    let indent = " ".repeat(label_width + GAP.len());
    pairs
        .iter()
        .map(|(label, value)| {
            let value = value.replace('\n', &format!("\n{indent}"));
            let pad = " ".repeat(label_width - width(label));
            format!("{label}{pad}{GAP}{value}").trim_end().to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Width of a cell, in characters.
fn width(s: &str) -> usize {
    s.chars().count()
}

/// A cell on one line: `\n`, `\r`, `\t` and other control characters escaped.
fn sanitize(s: &str) -> String {
    if !s.chars().any(char::is_control) {
        return s.to_string();
    }
    s.chars()
        .map(|c| match c {
            '\n' => "\\n".to_string(),
            '\r' => "\\r".to_string(),
            '\t' => "\\t".to_string(),
            c if c.is_control() => c.escape_unicode().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A JSON-compat user value as a table cell: text as is, null as `NULL`, big integers as digits, bytes as an
/// SQL blob literal `x'0a0b'`, anything else as compact JSON.
pub(crate) fn json_cell(value: &Json) -> String {
    match value {
        Json::Null => "NULL".to_string(),
        Json::String(s) => s.clone(),
        Json::Number(n) => n.to_string(),
        Json::Bool(b) => b.to_string(),
        Json::Array(items) => match items.as_slice() {
            [Json::String(tag), Json::String(digits)] if tag == "$BigInt" => digits.clone(),
            [Json::String(tag), Json::String(b64)] if tag == "$Uint8Array" || tag == "$ArrayBuffer" => {
                match STANDARD.decode(b64) {
                    Ok(bytes) => format!("x'{}'", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()),
                    Err(_) => value.to_string(),
                }
            }
            _ => value.to_string(),
        },
        Json::Object(_) => value.to_string(),
    }
}

/// Whether a JSON-compat value is a number (plain or big), for right alignment.
pub(crate) fn is_number(value: &Json) -> bool {
    match value {
        Json::Number(_) => true,
        Json::Array(items) => matches!(items.as_slice(), [Json::String(tag), Json::String(_)] if tag == "$BigInt"),
        _ => false,
    }
}

/// Milliseconds since the Unix epoch as UTC `YYYY-MM-DD HH:MM:SS`.
pub(crate) fn format_ms(ms: i64) -> String {
    let (days, ms_of_day) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    let (year, month, day) = civil_from_days(days);
    let secs = ms_of_day / 1000;
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// Nanoseconds since the Unix epoch as UTC `YYYY-MM-DD HH:MM:SS.mmm`.
pub(crate) fn format_nanos(ns: u64) -> String {
    let ms = i64::try_from(ns / 1_000_000).unwrap_or(i64::MAX);
    format!("{}.{:03}", format_ms(ms), ms.rem_euclid(1000))
}

/// A duration in nanoseconds, in the largest unit that keeps it above 1: `850ns`, `12.5µs`, `3.25ms`,
/// `1.50s`.
pub(crate) fn format_duration(ns: u64) -> String {
    let ns_f = ns as f64;
    match ns {
        0..1_000 => format!("{ns}ns"),
        1_000..1_000_000 => format!("{:.1}µs", ns_f / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2}ms", ns_f / 1e6),
        _ => format!("{:.2}s", ns_f / 1e9),
    }
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tables_align_columns_and_trim_trailing_space() {
        let mut table = Table::new(["ID", "NAME", "COUNT"]);
        table.align_right(2);
        table.push(vec!["a1".into(), "counter".into(), "5".into()]);
        table.push(vec!["b22222".into(), "room".into(), "1234".into()]);
        table.push(vec!["c".into()]);
        assert_eq!(
            table.render(),
            "ID      NAME     COUNT\n\
             a1      counter      5\n\
             b22222  room      1234\n\
             c"
        );
    }

    #[test]
    fn cells_stay_on_one_line_and_count_characters() {
        let mut table = Table::new(["k", "v"]);
        table.push(vec!["é€".into(), "line1\nline2\ttab\u{7}".into(), "dropped".into()]);
        table.push(vec!["abc".into(), "x".into()]);
        assert_eq!(table.render(), "k    v\né€   line1\\nline2\\ttab\\u{7}\nabc  x");
        assert_eq!(Table::new(["only header"]).render(), "only header");
    }

    #[test]
    fn label_value_blocks() {
        let text = key_values(&[("id", "abc".into()), ("state", "{\n  \"count\": 5\n}".into()), ("key", "".into())]);
        assert_eq!(text, "id     abc\nstate  {\n         \"count\": 5\n       }\nkey");
    }

    #[test]
    fn json_cells() {
        assert_eq!(json_cell(&json!(null)), "NULL");
        assert_eq!(json_cell(&json!("widget")), "widget");
        assert_eq!(json_cell(&json!(1.5)), "1.5");
        assert_eq!(json_cell(&json!(["$BigInt", "9007199254740993"])), "9007199254740993");
        assert_eq!(json_cell(&json!(["$Uint8Array", "AQL/"])), "x'0102ff'");
        assert_eq!(json_cell(&json!({"a": [1, 2]})), r#"{"a":[1,2]}"#);
        assert_eq!(json_cell(&json!(["a", "b"])), r#"["a","b"]"#);
        assert!(is_number(&json!(3)) && is_number(&json!(["$BigInt", "1"])) && !is_number(&json!("3")));
    }

    #[test]
    fn times_and_durations() {
        assert_eq!(format_ms(0), "1970-01-01 00:00:00");
        assert_eq!(format_ms(1_795_812_622_000), "2026-11-27 20:50:22");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(format_ms(-1000), "1969-12-31 23:59:59");
        assert_eq!(format_nanos(1_795_812_622_123_456_789), "2026-11-27 20:50:22.123");
        assert_eq!(format_duration(850), "850ns");
        assert_eq!(format_duration(12_500), "12.5µs");
        assert_eq!(format_duration(3_250_000), "3.25ms");
        assert_eq!(format_duration(1_500_000_000), "1.50s");
    }
}
