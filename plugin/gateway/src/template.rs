//! Filling `envoy/envoy.yaml.in`: block placeholders (a line holding only `${NAME}`) take several
//! lines, each indented like the placeholder; inline placeholders (`${NAME}` inside a line) take one
//! value, made safe for the single-quoted YAML scalar it sits in.

use std::collections::HashMap;

/// `template` with every placeholder filled; an unknown or unclosed placeholder is an error.
pub fn fill(
    template: &str,
    blocks: &HashMap<&str, String>,
    values: &HashMap<&str, String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(template.len() * 2);
    for line in template.split_inclusive('\n') {
        match block_of(line, blocks) {
            Some(block) => push_indented(&mut out, line, block),
            None => out.push_str(&inline(line, values)?),
        }
    }
    Ok(out)
}

/// The block a line holding only `${NAME}` names, when `blocks` has it.
fn block_of<'b>(line: &str, blocks: &'b HashMap<&str, String>) -> Option<&'b String> {
    line.trim()
        .strip_prefix("${")
        .and_then(|rest| rest.strip_suffix('}'))
        .and_then(|name| blocks.get(name))
}

/// `block`'s lines, each indented like the placeholder `line`.
fn push_indented(out: &mut String, line: &str, block: &str) {
    let indent = &line[..line.len() - line.trim_start().len()];
    for block_line in block.lines() {
        if !block_line.is_empty() {
            out.push_str(indent);
        }
        out.push_str(block_line);
        out.push('\n');
    }
}

fn inline(line: &str, values: &HashMap<&str, String>) -> Result<String, String> {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed placeholder in the template: {}", rest.trim()))?;
        let name = &after[..end];
        let value = values
            .get(name)
            .ok_or_else(|| format!("the template uses ${{{name}}}, which has no value"))?;
        out.push_str(&single_quoted_content(value));
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A value inside a single-quoted YAML scalar: `'` doubled, line breaks made spaces (the plugin
/// config is JSON, which allows both).
fn single_quoted_content(value: &str) -> String {
    value
        .replace("\r\n", " ")
        .replace(['\r', '\n'], " ")
        .replace('\'', "''")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_take_the_placeholders_indent_and_values_are_quoted_safely() {
        let blocks = HashMap::from([("LIST", "- a: 1\n  b: 2\n".to_owned())]);
        let values = HashMap::from([("V", "it's\n{\"x\": 1}".to_owned())]);
        let filled = fill("k:\n    ${LIST}\nv: '${V}'\n", &blocks, &values).unwrap();
        assert_eq!(
            filled,
            "k:\n    - a: 1\n      b: 2\nv: 'it''s {\"x\": 1}'\n"
        );
    }

    #[test]
    fn an_unknown_or_unclosed_placeholder_is_an_error() {
        let none = HashMap::new();
        assert!(fill("a: ${NOPE}\n", &none, &none)
            .unwrap_err()
            .contains("${NOPE}"));
        assert!(fill("a: ${OPEN\n", &none, &none)
            .unwrap_err()
            .starts_with("unclosed placeholder"));
    }
}
