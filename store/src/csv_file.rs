//! The CSV files the stages exchange: one writer and one reader. A cell that a spreadsheet
//! would run as a formula (it starts with `=`, `+`, `-`, `@`, a tab or a carriage return,
//! and is not a number) is written with a leading `'`, as OWASP recommends against CSV
//! injection; a cell that already starts with `'` before one of those gets one more. The
//! reader takes exactly one `'` off such cells, so the project reads back what it wrote.

use std::borrow::Cow;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{AtomicFile, StoreError};

/// Whether a spreadsheet would treat `cell` as a formula.
fn formula_like(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && cell.trim().parse::<f64>().is_err()
}

/// `cell` as written: a leading `'` added where a spreadsheet would run it, or where it
/// would otherwise be read back as a neutralised cell.
pub fn neutralize(cell: &str) -> Cow<'_, str> {
    let quoted_formula = |c: &str| c.strip_prefix('\'').is_some_and(|rest| formula_like(rest) || quoted(rest));
    if formula_like(cell) || quoted_formula(cell) { Cow::Owned(format!("'{cell}")) } else { Cow::Borrowed(cell) }
}

/// Whether `cell` is `'` followed by a formula-like cell (or another such).
fn quoted(cell: &str) -> bool {
    cell.strip_prefix('\'').is_some_and(|rest| formula_like(rest) || quoted(rest))
}

/// `cell` as it was before [`neutralize`].
pub fn restore(cell: &str) -> &str {
    if quoted(cell) { &cell[1..] } else { cell }
}

fn csv_err(path: &Path, e: csv::Error) -> StoreError {
    StoreError::Format { path: path.to_path_buf(), message: e.to_string() }
}

/// CSV bytes of `header` and `rows` (each a record of cells), every cell neutralised.
pub fn encode<I, R, S>(header: &[&str], rows: I) -> Result<Vec<u8>, csv::Error>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut w = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    w.write_record(header.iter().map(|h| neutralize(h).into_owned()))?;
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| neutralize(c.as_ref()).into_owned()).collect();
        w.write_record(&cells)?;
    }
    w.into_inner().map_err(|e| csv::Error::from(e.into_error()))
}

/// The column names serde gives `T`'s fields, in order: the header of a CSV of `T` rows,
/// read from the type itself so that no list of names is kept beside it.
pub fn header_of<T: Serialize + Default>() -> Vec<String> {
    let mut w = csv::Writer::from_writer(Vec::new());
    // A flat struct always serialises; the header is the record before the first row.
    let _ = w.serialize(T::default());
    let bytes = w.into_inner().unwrap_or_default();
    let mut r = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes.as_slice());
    r.records().next().and_then(Result::ok).map(|h| h.iter().map(str::to_string).collect()).unwrap_or_default()
}

/// Writes `header` then `rows` (serialised by serde) as CSV, atomically (the header is there
/// even with no rows), every cell neutralised.
pub fn write_csv<T: Serialize>(path: &Path, header: &[&str], rows: &[T]) -> Result<(), StoreError> {
    // Serialise plainly first, then neutralise cell by cell.
    let mut plain = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
    for row in rows {
        plain.serialize(row).map_err(|e| csv_err(path, e))?;
    }
    let plain = plain.into_inner().map_err(|e| csv_err(path, csv::Error::from(e.into_error())))?;
    let records: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(plain.as_slice())
        .records()
        .collect::<Result<_, _>>()
        .map_err(|e| csv_err(path, e))?;
    let bytes = encode(header, records.iter().map(|r| r.iter().collect::<Vec<_>>())).map_err(|e| csv_err(path, e))?;
    let mut file = AtomicFile::create(path)?;
    std::io::Write::write_all(&mut file, &bytes).map_err(|e| StoreError::io(path, e))?;
    file.commit()?;
    Ok(())
}

/// The header and rows of a CSV file, each cell restored.
pub fn read_records(path: &Path) -> Result<(csv::StringRecord, Vec<csv::StringRecord>), StoreError> {
    let mut r = csv::Reader::from_path(path).map_err(|e| csv_err(path, e))?;
    let restore_all = |record: &csv::StringRecord| record.iter().map(restore).collect::<csv::StringRecord>();
    let header = restore_all(r.headers().map_err(|e| csv_err(path, e))?);
    let rows =
        r.records().map(|row| row.map(|r| restore_all(&r)).map_err(|e| csv_err(path, e))).collect::<Result<_, _>>()?;
    Ok((header, rows))
}

/// Reads every row of a CSV file with a header, cells restored, deserialised by serde.
pub fn read_csv<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, StoreError> {
    let (header, rows) = read_records(path)?;
    rows.iter().map(|row| row.deserialize(Some(&header)).map_err(|e| csv_err(path, e))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_header_of_a_type_is_its_fields_as_serde_names_them() {
        #[derive(Default, Serialize)]
        struct Row {
            split: String,
            #[serde(rename = "n_images")]
            n: usize,
            auc: Option<f64>,
        }
        assert_eq!(header_of::<Row>(), ["split", "n_images", "auc"]);
    }

    #[test]
    fn formula_cells_are_neutralised_and_read_back_unchanged() {
        for cell in [
            "=HYPERLINK(\"x\")",
            "+1+1",
            "-2+3",
            "@SUM(A1)",
            "\tx",
            "'=x",
            "''=x",
            "'plain",
            "a=b",
            "-0.25",
            "1e-3",
            "",
        ] {
            let written = neutralize(cell);
            assert!(!formula_like(&written), "{cell:?} -> {written:?} is still a formula");
            assert_eq!(restore(&written), cell, "{cell:?} round trip");
        }
        assert_eq!(neutralize("-0.25"), "-0.25", "numbers stay numbers");
        assert_eq!(neutralize("=1+1"), "'=1+1");
        assert_eq!(neutralize("'plain"), "'plain", "a quote before plain text is left alone");
    }

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Row {
        path: String,
        value: f64,
    }

    #[test]
    fn serde_rows_round_trip_through_a_neutralised_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rows.csv");
        let rows = vec![
            Row { path: "=cmd|' /C calc'!A0.jpeg".into(), value: -1.5 },
            Row { path: "@x, \"quoted\"".into(), value: 0.0 },
        ];
        write_csv(&path, &["path", "value"], &rows).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.lines().skip(1).all(|l| !l.starts_with(['=', '@', '+'])), "{text}");
        assert!(text.contains("'=cmd") && text.contains(",-1.5"), "{text}");
        assert_eq!(read_csv::<Row>(&path).unwrap(), rows);
    }
}
