//! The identity headers an allowed request carries to the app: the verified
//! token's sub, username, groups, scopes, app client and kind.
//!
//! Values are made valid header text: visible ASCII passes, every other byte
//! (control characters, non-ASCII UTF-8, and `%` itself) is percent-encoded,
//! so a claim can neither break the header syntax nor forge another header;
//! in lists, a `,` inside an item is encoded too, so items stay items.

use crate::{config::IdentityHeaderNames, validate::VerifiedToken};

/// The configured names and how to fill them.
#[derive(Debug, Clone)]
pub struct IdentityHeaders {
    names: IdentityHeaderNames,
}

impl IdentityHeaders {
    pub fn new(names: &IdentityHeaderNames) -> Self {
        Self {
            names: names.clone(),
        }
    }

    /// Every identity header name: what a proxy must strip from the client's request.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.names.all().into_iter().map(|(_, name)| name)
    }

    /// (name, value) of each identity header `token` has a value for.
    pub fn values(&self, token: &VerifiedToken) -> Vec<(String, String)> {
        let names = &self.names;
        let mut headers = Vec::with_capacity(6);
        let mut add = |name: &str, value: String| {
            if !value.is_empty() {
                headers.push((name.to_string(), value));
            }
        };
        add(
            &names.sub,
            encoded(token.claims.sub.as_deref().unwrap_or(""), false),
        );
        add(&names.username, encoded(token.username(), false));
        add(&names.groups, joined(token.groups()));
        add(&names.scopes, joined(&token.scopes));
        add(&names.client_id, encoded(&token.client_id, false));
        add(&names.token_use, token.token_use.as_str().to_string());
        headers
    }
}

fn joined(items: &[String]) -> String {
    items
        .iter()
        .map(|item| encoded(item, true))
        .collect::<Vec<_>>()
        .join(",")
}

/// `value` as header text (see the module docs); `in_list`: `,` encoded too.
fn encoded(value: &str, in_list: bool) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let value = value.trim();
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        let keep = (b' '..=b'~').contains(&byte) && byte != b'%' && !(in_list && byte == b',');
        if keep {
            out.push(byte as char);
        } else {
            out.push('%');
            out.push(HEX[usize::from(byte >> 4)] as char);
            out.push(HEX[usize::from(byte & 0xF)] as char);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_cannot_break_the_header_syntax_or_the_list() {
        assert_eq!(encoded("alice@example.com", false), "alice@example.com");
        assert_eq!(
            encoded("a\r\nx-auth-sub: admin", false),
            "a%0D%0Ax-auth-sub: admin"
        );
        assert_eq!(encoded("Zoë 100%", false), "Zo%C3%AB 100%25");
        assert_eq!(
            joined(&["admin".into(), "a,b".into(), "ops".into()]),
            "admin,a%2Cb,ops"
        );
    }
}
