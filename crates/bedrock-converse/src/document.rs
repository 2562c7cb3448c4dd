//! Documents: OpenAI `file` content parts with inline data (and, through
//! the Messages API's translation, Anthropic `document` blocks) as
//! Converse document blocks, bounded as Bedrock bounds them.

use base64::Engine as _;
use serde_json::{Map, Value};

use crate::wire::{ContentBlock, DocumentBlock, DocumentSource, Message};

/// Documents a request may carry (Bedrock's limit).
pub const MAX_DOCUMENTS: usize = 5;

/// The largest document, in bytes (Bedrock's limit: 4.5 MB).
pub const MAX_DOCUMENT_BYTES: usize = 4_500_000;

/// A file part (`{"file_data": "data:application/pdf;base64,…",
/// "filename": "report.pdf"}`; raw base64 is read too) as a document
/// block, or why it cannot be one.
pub fn from_file_part(file: &Map<String, Value>) -> Result<DocumentBlock, String> {
    if file.contains_key("file_id") || file.contains_key("file_url") {
        return Err(
            "files by id or URL are not fetched by this gateway: send the file inline as file.file_data (base64)"
                .into(),
        );
    }
    let data = file
        .get("file_data")
        .and_then(Value::as_str)
        .ok_or("a file part needs file.file_data")?;
    let filename = file.get("filename").and_then(Value::as_str);
    let (mime, b64) = match data.strip_prefix("data:") {
        Some(rest) => {
            let (head, b64) = rest
                .split_once(',')
                .ok_or("file_data: a data URL needs a ',' before its data")?;
            let mime = head
                .strip_suffix(";base64")
                .ok_or("file_data: only base64 data URLs are supported")?;
            (Some(mime), b64)
        }
        None => (None, data),
    };
    // Checked before decoding: the decoded size is 3/4 of the text's.
    if b64.len() / 4 * 3 > MAX_DOCUMENT_BYTES + 3 {
        return Err(format!(
            "a document may be at most {MAX_DOCUMENT_BYTES} bytes (Bedrock's limit)"
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("file_data is not valid base64: {e}"))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(format!(
            "a document may be at most {MAX_DOCUMENT_BYTES} bytes (Bedrock's limit)"
        ));
    }
    let format = format_of(mime, filename, &bytes).ok_or_else(|| {
        format!(
            "document type {} is not one Bedrock reads: pdf, csv, doc, docx, xls, xlsx, html, txt or md",
            mime.or(filename).unwrap_or("(unknown)")
        )
    })?;
    Ok(DocumentBlock {
        format: format.into(),
        name: clean_name(filename.unwrap_or("document")),
        source: DocumentSource::Bytes(bytes),
    })
}

/// Bedrock's document format for a media type, else a file name's
/// extension, else the bytes (a PDF's signature).
fn format_of(mime: Option<&str>, filename: Option<&str>, bytes: &[u8]) -> Option<&'static str> {
    let by_mime = match mime.map(|m| m.split(';').next().unwrap_or(m).trim()) {
        Some("application/pdf") => Some("pdf"),
        Some("text/csv") => Some("csv"),
        Some("application/msword") => Some("doc"),
        Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document") => {
            Some("docx")
        }
        Some("application/vnd.ms-excel") => Some("xls"),
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet") => Some("xlsx"),
        Some("text/html") => Some("html"),
        Some("text/plain") => Some("txt"),
        Some("text/markdown") => Some("md"),
        _ => None,
    };
    let by_name = || {
        let ext = filename?.rsplit_once('.')?.1.to_ascii_lowercase();
        [
            "pdf", "csv", "doc", "docx", "xls", "xlsx", "html", "txt", "md",
        ]
        .into_iter()
        .find(|f| *f == ext)
        .or(match ext.as_str() {
            "htm" => Some("html"),
            "markdown" => Some("md"),
            _ => None,
        })
    };
    by_mime
        .or_else(by_name)
        .or_else(|| bytes.starts_with(b"%PDF-").then_some("pdf"))
}

/// A document name as Bedrock takes it: letters, digits, single spaces,
/// hyphens, parentheses and square brackets (anything else becomes a
/// hyphen; the extension is dropped), at most 200 characters, never empty.
pub fn clean_name(raw: &str) -> String {
    let stem = match raw.rsplit_once('.') {
        Some((s, ext)) if !s.is_empty() && ext.len() <= 5 => s,
        _ => raw,
    };
    let mut out = String::with_capacity(stem.len());
    for c in stem.chars() {
        let c = if c.is_alphanumeric() || matches!(c, '-' | '(' | ')' | '[' | ']') {
            c
        } else if c.is_whitespace() {
            ' '
        } else {
            '-'
        };
        if c == ' ' && (out.is_empty() || out.ends_with(' ')) {
            continue;
        }
        out.push(c);
    }
    let out: String = out.trim_end().chars().take(200).collect();
    let out = out.trim_end().to_owned();
    if out.is_empty() {
        "document".into()
    } else {
        out
    }
}

/// Bounds a request's documents and makes their names distinct (Bedrock
/// refuses two documents of one name): `report`, `report (2)`, ….
pub fn check(messages: &mut [Message]) -> Result<(), String> {
    let mut seen: Vec<String> = Vec::new();
    for b in messages.iter_mut().flat_map(|m| &mut m.content) {
        if let ContentBlock::Document(d) = b {
            let mut name = d.name.clone();
            let mut n = 1;
            while seen.contains(&name) {
                n += 1;
                name = format!("{} ({n})", d.name);
            }
            d.name.clone_from(&name);
            seen.push(name);
        }
    }
    if seen.len() > MAX_DOCUMENTS {
        return Err(format!(
            "a request may carry at most {MAX_DOCUMENTS} documents (Bedrock's limit); this one has {}",
            seen.len()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn names_follow_bedrocks_rules() {
        assert_eq!(clean_name("Q3 report (final).pdf"), "Q3 report (final)");
        assert_eq!(clean_name("a_b/c..d"), "a-b-c-");
        assert_eq!(
            clean_name("  two   spaces\tand\nlines.txt"),
            "two spaces and lines"
        );
        assert_eq!(clean_name("..."), "--");
        assert_eq!(clean_name(""), "document");
        assert_eq!(clean_name(&"x".repeat(300)).len(), 200);
    }

    #[test]
    fn file_parts_become_documents_or_say_why_not() {
        let pdf = base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 hello");
        let d = from_file_part(&part(serde_json::json!({
            "file_data": format!("data:application/pdf;base64,{pdf}"), "filename": "notes.pdf"})))
        .unwrap();
        assert_eq!((d.format.as_str(), d.name.as_str()), ("pdf", "notes"));
        // Raw base64 without a type: the signature tells.
        let d = from_file_part(&part(serde_json::json!({"file_data": pdf}))).unwrap();
        assert_eq!((d.format.as_str(), d.name.as_str()), ("pdf", "document"));
        let md = base64::engine::general_purpose::STANDARD.encode(b"# title");
        let d = from_file_part(&part(
            serde_json::json!({"file_data": md, "filename": "README.md"}),
        ))
        .unwrap();
        assert_eq!(d.format, "md");
        for (v, why) in [
            (serde_json::json!({"file_id": "file-1"}), "inline"),
            (
                serde_json::json!({"file_data": "data:image/png;base64,AAAA", "filename": "x.png"}),
                "not one Bedrock reads",
            ),
            (serde_json::json!({"file_data": "%%%"}), "base64"),
            (
                serde_json::json!({"file_data": "A".repeat(6_100_000)}),
                "at most 4500000 bytes",
            ),
        ] {
            let e = from_file_part(&part(v)).unwrap_err();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn a_requests_documents_are_counted_and_named_apart() {
        let doc = |name: &str| {
            ContentBlock::Document(DocumentBlock {
                format: "txt".into(),
                name: name.into(),
                source: DocumentSource::Bytes(b"x".to_vec()),
            })
        };
        let mut m = vec![Message {
            role: crate::wire::Role::User,
            content: vec![doc("a"), doc("a"), doc("b"), doc("a")],
        }];
        check(&mut m).unwrap();
        let names: Vec<&str> = m[0]
            .content
            .iter()
            .map(|b| match b {
                ContentBlock::Document(d) => d.name.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(names, ["a", "a (2)", "b", "a (3)"]);
        m[0].content.extend([doc("c"), doc("d")]);
        assert!(check(&mut m).unwrap_err().contains("at most 5 documents"));
    }
}
