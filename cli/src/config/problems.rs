//! The problems found in a deploy.yml, each tied to the key it is about, so its line can
//! be named and the list read in file order.

use super::locate::KeyLines;

pub(super) struct Problem {
    /// The dotted key path (`servers.web.deploy.boot_timeout`).
    key: String,
    message: String,
}

pub(super) struct Problems {
    list: Vec<Problem>,
}

impl Problems {
    pub fn new() -> Self {
        Problems { list: Vec::new() }
    }

    pub fn push(&mut self, key: impl Into<String>, message: impl Into<String>) {
        self.list.push(Problem {
            key: key.into(),
            message: message.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `file:line: key: message` (`file: key: message` when the key is not in the
    /// text), in file order; problems without a line keep their order, last.
    pub fn render(self, shown: &str, text: &str) -> Vec<String> {
        let lines = KeyLines::scan(text);
        let mut placed: Vec<(Option<usize>, String)> = self
            .list
            .into_iter()
            .map(|p| {
                let line = lines.line(&p.key);
                let text = match line {
                    Some(line) => format!("{shown}:{line}: {}: {}", p.key, p.message),
                    None => format!("{shown}: {}: {}", p.key, p.message),
                };
                (line, text)
            })
            .collect();
        placed.sort_by_key(|(line, _)| line.unwrap_or(usize::MAX));
        placed.into_iter().map(|(_, text)| text).collect()
    }
}
