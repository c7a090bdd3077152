//! Plain-text tables in Markdown syntax, so the output can be pasted into docs/performance.md.

/// A table with a title, a header row and data rows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// Printed above the table.
    pub title: String,
    /// Column headings.
    pub header: Vec<String>,
    /// Rows; a short row is padded with empty cells.
    pub rows: Vec<Vec<String>>,
    /// Lines printed under the table (targets, caveats).
    pub notes: Vec<String>,
}

impl Table {
    /// A table with these column headings.
    pub fn new(title: impl Into<String>, header: &[&str]) -> Self {
        Table {
            title: title.into(),
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            ..Table::default()
        }
    }

    /// Adds a row.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// Adds a note line.
    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    /// Markdown text with columns padded to a common width.
    pub fn render(&self) -> String {
        let columns = self
            .rows
            .iter()
            .map(Vec::len)
            .chain([self.header.len()])
            .max()
            .unwrap_or(0);
        let cell = |row: &[String], i: usize| row.get(i).cloned().unwrap_or_default();
        let widths: Vec<usize> = (0..columns)
            .map(|i| {
                std::iter::once(&self.header)
                    .chain(&self.rows)
                    .map(|r| cell(r, i).chars().count())
                    .max()
                    .unwrap_or(0)
                    .max(3)
            })
            .collect();
        let line = |row: &[String]| {
            let cells: Vec<String> = widths
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let text = cell(row, i);
                    let pad = w - text.chars().count();
                    format!("{text}{}", " ".repeat(pad))
                })
                .collect();
            format!("| {} |", cells.join(" | "))
        };
        let mut out = format!("### {}\n\n", self.title);
        out.push_str(&line(&self.header));
        out.push('\n');
        let rule: Vec<String> = widths.iter().map(|w| "-".repeat(*w)).collect();
        out.push_str(&format!("|-{}-|\n", rule.join("-|-")));
        for row in &self.rows {
            out.push_str(&line(row));
            out.push('\n');
        }
        for note in &self.notes {
            out.push_str(&format!("\n{note}"));
        }
        if !self.notes.is_empty() {
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_padded_markdown() {
        let mut t = Table::new("Start-up", &["operator", "seconds"]);
        t.row(vec!["provisioner".into(), "0.25 (0.20–0.30)".into()]);
        t.row(vec!["ops".into()]);
        t.note("target: < 1 s");
        assert_eq!(
            t.render(),
            "### Start-up\n\n\
             | operator    | seconds          |\n\
             |-------------|------------------|\n\
             | provisioner | 0.25 (0.20–0.30) |\n\
             | ops         |                  |\n\
             \ntarget: < 1 s\n"
        );
    }

    #[test]
    fn extra_cells_widen_the_table() {
        let mut t = Table::new("t", &["a"]);
        t.row(vec!["x".into(), "yy".into()]);
        assert!(t.render().contains("| x   | yy  |"), "{}", t.render());
    }
}
