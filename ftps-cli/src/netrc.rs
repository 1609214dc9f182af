//! `.netrc` files (`--netrc`, `--netrc-file`), as curl and ftp(1) read them: `machine
//! NAME` entries (and one `default`) with `login`, `password` and `account` tokens;
//! `macdef` bodies (up to an empty line) skipped. Tokens are separated by white space;
//! a token may be double-quoted, with `\` escaping the next character (curl's extension).

/// The login and password a `.netrc` gives for a host.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Entry {
    /// `login`.
    pub(crate) login: Option<String>,
    /// `password`.
    pub(crate) password: Option<String>,
}

/// The tokens of `text`, `macdef` bodies dropped.
fn tokens(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let mut chars = line.chars().peekable();
        loop {
            while chars.next_if(|c| c.is_whitespace()).is_some() {}
            let Some(&first) = chars.peek() else { break };
            let mut token = String::new();
            if first == '"' {
                chars.next();
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => token.extend(chars.next()),
                        c => token.push(c),
                    }
                }
            } else {
                while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                    token.push(c);
                }
            }
            out.push(token);
        }
        if out.len() >= 2 && out[out.len() - 2] == "macdef" {
            // The macro's body runs to the next empty line.
            for body in lines.by_ref() {
                if body.trim().is_empty() {
                    break;
                }
            }
        }
    }
    out
}

/// The entry of `text` for `host` (its `machine`, else `default`); with `user`, only an
/// entry whose `login` is that user (or that names none) counts.
pub(crate) fn lookup(text: &str, host: &str, user: Option<&str>) -> Option<Entry> {
    let tokens = tokens(text);
    let mut found: Option<Entry> = None;
    let mut current: Option<(bool, Entry)> = None;
    let fits = |entry: (bool, Entry), found: &mut Option<Entry>| {
        let (is_host, e) = entry;
        let user_fits = user.is_none_or(|u| e.login.as_deref().is_none_or(|l| l == u));
        if is_host && user_fits && found.is_none() {
            *found = Some(e);
        }
    };
    let mut default: Option<Entry> = None;
    let mut it = tokens.into_iter();
    while let Some(t) = it.next() {
        match t.as_str() {
            "machine" => {
                if let Some(entry) = current.take() {
                    fits(entry, &mut found);
                }
                let name = it.next().unwrap_or_default();
                current = Some((name.eq_ignore_ascii_case(host), Entry::default()));
            }
            "default" => {
                if let Some(entry) = current.take() {
                    fits(entry, &mut found);
                }
                // Entries after `default` are not looked at (ftp(1)).
                let mut e = Entry::default();
                while let Some(t) = it.next() {
                    match t.as_str() {
                        "login" => e.login = it.next(),
                        "password" => e.password = it.next(),
                        "account" | "macdef" => {
                            it.next();
                        }
                        _ => break,
                    }
                }
                default = Some(e);
                break;
            }
            "login" | "password" | "account" => {
                let value = it.next();
                if let Some((_, e)) = current.as_mut() {
                    match t.as_str() {
                        "login" => e.login = value,
                        "password" => e.password = value,
                        _ => {}
                    }
                }
            }
            "macdef" => {
                it.next();
            }
            _ => {}
        }
    }
    if let Some(entry) = current.take() {
        fits(entry, &mut found);
    }
    found.or_else(|| {
        default.filter(|e| user.is_none_or(|u| e.login.as_deref().is_none_or(|l| l == u)))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(login: &str, password: &str) -> Option<Entry> {
        Some(Entry {
            login: Some(login.into()),
            password: Some(password.into()),
        })
    }

    #[test]
    fn finds_the_host_then_the_default() {
        let text = "machine a.example login alice password one\n\
                    machine b.example\n  login bob\n  password \"t w\\\"o\"\n\
                    macdef init\ncd /x\nls\n\n\
                    machine c.example login carol password three\n\
                    default login anonymous password guest@\n";
        assert_eq!(lookup(text, "a.example", None), entry("alice", "one"));
        assert_eq!(lookup(text, "B.EXAMPLE", None), entry("bob", "t w\"o"));
        assert_eq!(lookup(text, "c.example", None), entry("carol", "three"));
        assert_eq!(
            lookup(text, "z.example", None),
            entry("anonymous", "guest@")
        );
        // A user given: only an entry for that login.
        assert_eq!(
            lookup(text, "a.example", Some("alice")),
            entry("alice", "one")
        );
        assert_eq!(lookup(text, "a.example", Some("mallory")), None);
        assert_eq!(lookup("", "a.example", None), None);
    }

    #[test]
    fn several_entries_for_one_host_pick_the_user() {
        let text = "machine h login a password 1\nmachine h login b password 2\n";
        assert_eq!(lookup(text, "h", Some("b")), entry("b", "2"));
        assert_eq!(lookup(text, "h", None), entry("a", "1"));
    }
}
