//! The build context as the engine receives it: a tar of the context directory without
//! what `.dockerignore` excludes, written on a blocking thread and streamed in chunks, so a
//! large context is never held in memory whole.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::dockerignore::DockerIgnore;

/// The name the Dockerfile has inside the archive when it lives outside the context
/// (or is excluded from it): the engine reads it from there.
pub const OUTSIDE_DOCKERFILE: &str = ".odysseus.Dockerfile";

/// What to archive, checked before anything is sent.
pub struct Context {
    pub dir: PathBuf,
    ignore: DockerIgnore,
    /// Context-relative paths never sent, whatever .dockerignore says (odysseus's state
    /// dir, the secrets file).
    never: Vec<String>,
    /// The Dockerfile's bytes when they go in under `OUTSIDE_DOCKERFILE`.
    outside_dockerfile: Option<Vec<u8>>,
    /// The Dockerfile's path as the engine names it.
    pub dockerfile_name: String,
}

impl Context {
    pub fn prepare(
        dir: &Path,
        dockerfile: &Path,
        never_send: &[PathBuf],
    ) -> Result<Context, String> {
        let meta = std::fs::metadata(dir)
            .map_err(|e| format!("the build context {}: {e}", dir.display()))?;
        if !meta.is_dir() {
            return Err(format!(
                "the build context {} is not a directory",
                dir.display()
            ));
        }
        if !dockerfile.is_file() {
            return Err(format!(
                "no Dockerfile at {} (builder.dockerfile, relative to deploy.yml's folder)",
                dockerfile.display()
            ));
        }
        // A repository must not make the deployer read a file elsewhere on its machine.
        if std::fs::symlink_metadata(dockerfile).is_ok_and(|m| m.file_type().is_symlink()) {
            return Err(format!(
                "the Dockerfile {} is a symbolic link: odysseus reads only a regular file there",
                dockerfile.display()
            ));
        }
        let ignore = match std::fs::read_to_string(dir.join(".dockerignore")) {
            Ok(text) => DockerIgnore::parse(&text).map_err(|b| {
                format!(
                    "{}:{}: `{}` is not a valid pattern: {}",
                    dir.join(".dockerignore").display(),
                    b.line,
                    b.text.trim(),
                    b.why
                )
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => DockerIgnore::none(),
            Err(e) => return Err(format!("{}: {e}", dir.join(".dockerignore").display())),
        };
        let canonical_dir = std::fs::canonicalize(dir).map_err(|e| e.to_string())?;
        let canonical_file = std::fs::canonicalize(dockerfile).map_err(|e| e.to_string())?;
        let inside = canonical_file
            .strip_prefix(&canonical_dir)
            .ok()
            .map(|p| p.to_string_lossy().replace('\\', "/"));
        let (outside_dockerfile, dockerfile_name) = match inside {
            Some(rel) if !ignore.excludes(&rel) => (None, rel),
            _ => (
                Some(
                    std::fs::read(dockerfile)
                        .map_err(|e| format!("reading {}: {e}", dockerfile.display()))?,
                ),
                OUTSIDE_DOCKERFILE.to_string(),
            ),
        };
        let never = never_send
            .iter()
            .filter_map(|p| std::fs::canonicalize(p).ok())
            .filter_map(|p| {
                p.strip_prefix(&canonical_dir)
                    .ok()
                    .map(|r| r.to_string_lossy().into_owned())
            })
            .filter(|r| !r.is_empty())
            .collect();
        Ok(Context {
            dir: canonical_dir,
            ignore,
            never,
            outside_dockerfile,
            dockerfile_name,
        })
    }

    /// Streams the archive: chunks arrive on the receiver; an error ends the stream with
    /// it (a file that vanished, a permission denied), named by path.
    pub fn stream(self) -> mpsc::Receiver<Result<Bytes, std::io::Error>> {
        let (tx, rx) = mpsc::channel(8);
        tokio::task::spawn_blocking(move || {
            let writer = ChunkWriter {
                tx: tx.clone(),
                buf: Vec::with_capacity(CHUNK),
            };
            if let Err(e) = self.write(writer) {
                let _ = tx.blocking_send(Err(e));
            }
        });
        rx
    }

    fn write(self, writer: ChunkWriter) -> std::io::Result<()> {
        let mut tar = tar::Builder::new(writer);
        tar.follow_symlinks(false);
        // The engine's tar reader does not take GNU sparse entries (type S).
        tar.sparse(false);
        self.walk(&mut tar, &self.dir, "")?;
        if let Some(bytes) = &self.outside_dockerfile {
            let mut header = tar::Header::new_gnu();
            header.set_size(bytes.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            tar.append_data(&mut header, OUTSIDE_DOCKERFILE, bytes.as_slice())?;
        }
        let mut writer = tar.into_inner()?;
        writer.flush()
    }

    fn walk<W: Write>(
        &self,
        tar: &mut tar::Builder<W>,
        dir: &Path,
        rel: &str,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .map_err(|e| named(e, dir))?
            .collect::<Result<_, _>>()
            .map_err(|e| named(e, dir))?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().to_string_lossy().into_owned();
            let path = if rel.is_empty() {
                name.clone()
            } else {
                format!("{rel}/{name}")
            };
            let kind = entry.file_type().map_err(|e| named(e, &entry.path()))?;
            // The engine needs .dockerignore and the Dockerfile even when they are
            // excluded from what COPY sees (the Docker CLI sends them too).
            if self.never.contains(&path) {
                continue;
            }
            let always = path == ".dockerignore" || path == self.dockerfile_name;
            if self.ignore.excludes(&path) && !always {
                if kind.is_dir() && self.ignore.has_includes() {
                    self.walk(tar, &entry.path(), &path)?;
                }
                continue;
            }
            if kind.is_dir() {
                tar.append_dir(&path, entry.path())
                    .map_err(|e| named(e, &entry.path()))?;
                self.walk(tar, &entry.path(), &path)?;
            } else if kind.is_file() || kind.is_symlink() {
                tar.append_path_with_name(entry.path(), &path)
                    .map_err(|e| named(e, &entry.path()))?;
            }
            // Sockets, fifos and devices have no place in an image's context.
        }
        Ok(())
    }
}

fn named(e: std::io::Error, path: &Path) -> std::io::Error {
    std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

const CHUNK: usize = 256 * 1024;

/// Hands the archive over in chunks; the receiver's pace is the writer's.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx.blocking_send(Ok(chunk)).map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the engine stopped reading the build context",
            )
        })
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.send()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(archive: &[u8]) -> Vec<String> {
        let mut a = tar::Archive::new(archive);
        a.entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect()
    }

    async fn archive(ctx: Context) -> Vec<u8> {
        let mut rx = ctx.stream();
        let mut out = Vec::new();
        while let Some(chunk) = rx.recv().await {
            out.extend_from_slice(&chunk.unwrap());
        }
        out
    }

    #[tokio::test]
    async fn the_archive_leaves_out_what_dockerignore_excludes_but_keeps_the_dockerfile() {
        let dir = std::env::temp_dir().join(format!("ody-ctx-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("src")).unwrap();
        std::fs::create_dir_all(dir.join("node_modules/x")).unwrap();
        std::fs::write(dir.join("Dockerfile"), "FROM scratch\n").unwrap();
        std::fs::write(
            dir.join(".dockerignore"),
            "node_modules\n*.secret\nDockerfile\n",
        )
        .unwrap();
        std::fs::write(dir.join("src/app.sh"), "echo\n").unwrap();
        std::fs::write(dir.join("node_modules/x/big.js"), "x").unwrap();
        std::fs::write(dir.join("prod.secret"), "k").unwrap();
        std::os::unix::fs::symlink("/etc/shadow", dir.join("link")).unwrap();
        std::fs::create_dir_all(dir.join(".odysseus")).unwrap();
        std::fs::write(dir.join(".odysseus/secrets.key"), "k").unwrap();
        // Sparse: the engine refuses GNU sparse entries.
        std::fs::File::create(dir.join("sparse.bin"))
            .unwrap()
            .set_len(8 << 20)
            .unwrap();
        let ctx =
            Context::prepare(&dir, &dir.join("Dockerfile"), &[dir.join(".odysseus")]).unwrap();
        assert_eq!(ctx.dockerfile_name, OUTSIDE_DOCKERFILE);
        let got = names(&archive(ctx).await);
        assert!(got.contains(&"src/app.sh".to_string()), "{got:?}");
        assert!(got.contains(&".dockerignore".to_string()));
        assert!(got.contains(&OUTSIDE_DOCKERFILE.to_string()));
        assert!(
            got.contains(&"link".to_string()),
            "a link goes in as a link"
        );
        assert!(
            !got.iter().any(|n| n.starts_with("node_modules")),
            "{got:?}"
        );
        assert!(!got.contains(&"prod.secret".to_string()));
        assert!(
            !got.iter()
                .any(|n| n == ".odysseus" || n.starts_with(".odysseus/")),
            "the state dir is never sent: {got:?}"
        );
        // The link was not followed: its entry is a symlink, not /etc/shadow's bytes.
        let bytes = archive(
            Context::prepare(&dir, &dir.join("Dockerfile"), &[dir.join(".odysseus")]).unwrap(),
        )
        .await;
        let mut a = tar::Archive::new(bytes.as_slice());
        let link = a
            .entries()
            .unwrap()
            .map(|e| e.unwrap())
            .find(|e| e.path().unwrap().to_string_lossy() == "link")
            .unwrap();
        assert_eq!(link.header().entry_type(), tar::EntryType::Symlink);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_dockerfile_or_context_is_named() {
        let e = Context::prepare(
            Path::new("/nonexistent-ctx"),
            Path::new("/x/Dockerfile"),
            &[],
        )
        .err()
        .unwrap();
        assert!(e.contains("/nonexistent-ctx"), "{e}");
        let e = Context::prepare(
            Path::new("/tmp"),
            Path::new("/tmp/no-such-Dockerfile-here"),
            &[],
        )
        .err()
        .unwrap();
        assert!(
            e.contains("no Dockerfile at /tmp/no-such-Dockerfile-here"),
            "{e}"
        );
    }
}
