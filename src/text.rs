//! Text taken from the network (a token's claims, a JWKS document's fields)
//! made safe to echo in a message or a log line: cut to a bound, control
//! characters replaced, so no input can make one answer or one line large
//! or forge a new line.

/// `value` cut to `max` characters (ending in `…` when cut), control characters as `?`.
pub fn bounded(value: &str, max: usize) -> String {
    let mut chars = value.chars();
    let mut out: String = chars
        .by_ref()
        .take(max)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if chars.next().is_some() {
        out.pop();
        out.push('…');
    }
    out
}

/// An error and its sources on one line, each distinct message once
/// (transport errors repeat themselves down the chain).
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.contains(&text) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::bounded;

    #[test]
    fn long_values_are_cut_and_control_characters_replaced() {
        assert_eq!(bounded("short", 10), "short");
        assert_eq!(bounded("exactly-10", 10), "exactly-10");
        assert_eq!(bounded("eleven-char", 10), "eleven-ch…");
        assert_eq!(bounded("a\nb\r\u{0}c", 10), "a?b??c");
        assert_eq!(bounded(&"é".repeat(500), 200).chars().count(), 200);
    }
}
