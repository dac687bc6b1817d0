//! Small text formats shared by every output: CSV fields and lines, written by the `csv`
//! crate (RFC 4180 quoting: only when a field needs it).

fn writer(buf: &mut Vec<u8>) -> csv::Writer<&mut Vec<u8>> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .quote_style(csv::QuoteStyle::Necessary)
        .from_writer(buf)
}

/// One CSV line (with its line break) from the fields.
pub fn csv_line<S: AsRef<[u8]>>(fields: impl IntoIterator<Item = S>) -> String {
    let mut buf = Vec::new();
    {
        let mut w = writer(&mut buf);
        // Writing to memory cannot fail.
        let _ = w.write_record(fields);
        let _ = w.flush();
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// One field, quoted when needed (commas, quotes, line breaks), for lines built by hand.
pub fn csv_field(s: &str) -> String {
    if s.is_empty() {
        // Alone on a line the crate writes `""` (else the line would be blank); inside a line
        // an empty field is nothing.
        return String::new();
    }
    let mut line = csv_line([s]);
    line.pop(); // the line break
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("a b"), "a b");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
        assert_eq!(csv_field(""), "");
        assert_eq!(csv_line(["a", "b,c", ""]), "a,\"b,c\",\n");
    }
}
