//! `.dockerignore`, read the way the Docker CLI reads it: one pattern per line, `#`
//! comments, `!` re-includes, a leading `/` ignored, the last matching line wins, and a
//! pattern that matches a directory excludes everything under it. Globs (`*`, `?`,
//! `[..]`, `**`) are globset's, with `*` stopping at `/` as Go's `filepath.Match` does.

use globset::{Glob, GlobBuilder, GlobMatcher};

pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

struct Pattern {
    matcher: GlobMatcher,
    /// A `!` line: matching it includes the path again.
    include: bool,
}

/// A line that is not a valid glob, with its number.
#[derive(Debug)]
pub struct BadPattern {
    pub line: usize,
    pub text: String,
    pub why: String,
}

impl DockerIgnore {
    pub fn none() -> Self {
        DockerIgnore {
            patterns: Vec::new(),
        }
    }

    pub fn parse(text: &str) -> Result<Self, BadPattern> {
        let mut patterns = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (include, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let cleaned = clean(body);
            if cleaned.is_empty() {
                continue;
            }
            let glob: Glob = GlobBuilder::new(&cleaned)
                .literal_separator(true)
                .backslash_escape(true)
                .build()
                .map_err(|e| BadPattern {
                    line: i + 1,
                    text: raw.to_string(),
                    why: e.kind().to_string(),
                })?;
            patterns.push(Pattern {
                matcher: glob.compile_matcher(),
                include,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// Whether some `!` line could bring back a path under an excluded directory (then
    /// the directory is walked instead of skipped whole).
    pub fn has_includes(&self) -> bool {
        self.patterns.iter().any(|p| p.include)
    }

    /// `path` is relative to the context, with `/` separators.
    pub fn excludes(&self, path: &str) -> bool {
        let parents: Vec<&str> = ancestors(path).collect();
        let mut excluded = false;
        for p in &self.patterns {
            // A line can only change the answer: an exclusion once excluded, or an
            // inclusion while not, is skipped (as the Docker CLI does).
            if p.include != excluded {
                continue;
            }
            if p.matcher.is_match(path) || parents.iter().any(|dir| p.matcher.is_match(dir)) {
                excluded = !p.include;
            }
        }
        excluded
    }
}

/// The path's parent directories, outermost first (`a`, `a/b` for `a/b/c`).
fn ancestors(path: &str) -> impl Iterator<Item = &str> {
    path.match_indices('/').map(move |(i, _)| &path[..i])
}

/// Go's `filepath.Clean` for a pattern, without the leading `/` Docker ignores.
fn clean(pattern: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in pattern.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ignore(text: &str) -> DockerIgnore {
        DockerIgnore::parse(text).unwrap()
    }

    #[test]
    fn a_matching_directory_excludes_what_is_under_it() {
        let i = ignore("node_modules\n/tmp\n");
        assert!(i.excludes("node_modules"));
        assert!(i.excludes("node_modules/a/b.js"));
        assert!(i.excludes("tmp/x"));
        assert!(!i.excludes("src/node_modules_list.txt"));
        // Only at the top, as in Docker: no implicit `**/`.
        assert!(!i.excludes("src/node_modules/x"));
    }

    #[test]
    fn star_stops_at_a_slash_and_double_star_crosses_them() {
        let i = ignore("*.log\n**/*.tmp\n");
        assert!(i.excludes("a.log"));
        assert!(!i.excludes("dir/a.log"));
        assert!(i.excludes("x.tmp"));
        assert!(i.excludes("deep/er/x.tmp"));
    }

    #[test]
    fn the_last_matching_line_wins_and_bang_brings_back() {
        let i = ignore("# comment\n*.md\n!README.md\n");
        assert!(i.excludes("CHANGES.md"));
        assert!(!i.excludes("README.md"));
        let again = ignore("*.md\n!README.md\nREADME.md\n");
        assert!(again.excludes("README.md"));
        assert!(i.has_includes());
        assert!(!ignore("a\n").has_includes());
    }

    #[test]
    fn patterns_are_cleaned_like_go_paths() {
        let i = ignore("  ./build/  \n/secret//key\n");
        assert!(i.excludes("build/out"));
        assert!(i.excludes("secret/key"));
    }

    #[test]
    fn a_broken_glob_names_its_line() {
        let e = DockerIgnore::parse("ok\n[z-a\n").err().unwrap();
        assert_eq!(e.line, 2);
    }
}
