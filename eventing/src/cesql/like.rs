//! `LIKE` patterns (CESQL v1 section 3.4.3).

use super::types::PatternItem;

/// `%` is any run of characters, `_` one character; `\%` and `\_` are themselves, and a backslash
/// before anything else is a backslash.
pub fn compile(pattern: &str) -> Vec<PatternItem> {
    let mut items = Vec::new();
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        items.push(match c {
            '%' => PatternItem::AnyRun,
            '_' => PatternItem::AnyOne,
            '\\' => match chars.peek() {
                Some(&e @ ('%' | '_')) => {
                    chars.next();
                    PatternItem::Char(e)
                }
                _ => PatternItem::Char('\\'),
            },
            c => PatternItem::Char(c),
        });
    }
    items
}

/// Whether `text` matches `pattern`: linear scan, backtracking only to the last `%`.
pub fn matches(text: &str, pattern: &[PatternItem]) -> bool {
    let text: Vec<char> = text.chars().collect();
    let (mut t, mut p) = (0, 0);
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(PatternItem::AnyRun) => {
                resume = Some((p, t));
                p += 1;
            }
            Some(PatternItem::AnyOne) => (t, p) = (t + 1, p + 1),
            Some(PatternItem::Char(c)) if *c == text[t] => (t, p) = (t + 1, p + 1),
            _ => match resume {
                Some((rp, rt)) => {
                    resume = Some((rp, rt + 1));
                    (p, t) = (rp + 1, rt + 1);
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|i| *i == PatternItem::AnyRun)
}
