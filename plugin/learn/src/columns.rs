//! Text tables for a terminal, as `triage eval` and `triage report` print them.

/// `rows` as columns padded to their widest cell (counted in characters), the first left-aligned
/// and the others right-aligned, two spaces apart; each line starts with `indent`, trailing spaces
/// are cut.
pub fn columns<R: AsRef<[String]>>(rows: &[R], indent: &str) -> String {
    let mut widths: Vec<usize> = Vec::new();
    for row in rows {
        for (column, cell) in row.as_ref().iter().enumerate() {
            let width = cell.chars().count();
            match widths.get_mut(column) {
                Some(widest) => *widest = (*widest).max(width),
                None => widths.push(width),
            }
        }
    }
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .as_ref()
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(column, (cell, width))| {
                if column == 0 {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        out += indent;
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::columns;

    #[test]
    fn columns_pad_to_the_widest_cell_by_characters() {
        let rows = [
            ["name".to_string(), "µs".to_string(), String::new()],
            ["a".to_string(), "12345".to_string(), String::new()],
        ];
        assert_eq!(columns(&rows, "  "), "  name     µs\n  a     12345\n");
    }
}
