//! Tar archives for the Docker API's archive endpoints: a file placed in a container (no
//! shell, no file on the host), and the files of a directory read back from one.

use std::io::Read;

/// An archive holding `contents` at `path` (absolute or not: entries are relative to the
/// directory the archive is extracted in, `/` for odysseus's uploads).
pub fn single_file(path: &str, contents: &[u8], mode: u32) -> std::io::Result<Vec<u8>> {
    let mut header = tar::Header::new_ustar();
    header.set_size(contents.len() as u64);
    header.set_mode(mode);
    header.set_entry_type(tar::EntryType::Regular);
    let mut builder = tar::Builder::new(Vec::new());
    builder.append_data(&mut header, path.trim_start_matches('/'), contents)?;
    builder.into_inner()
}

/// The regular files of `archive` one level below its top directory (what the Docker API
/// sends for a directory), as (file name, contents).
pub fn files_in(archive: &[u8]) -> std::io::Result<Vec<(String, Vec<u8>)>> {
    let mut reader = tar::Archive::new(archive);
    let mut out = Vec::new();
    for entry in reader.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = entry.path()?.into_owned();
        if path.components().count() != 2 {
            continue;
        }
        let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        let mut contents = Vec::new();
        entry.read_to_end(&mut contents)?;
        out.push((name, contents));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_file_written_is_read_back_from_its_directory() {
        let archive = super::single_file("/etc/caddy/odysseus.json", b"{\"a\":1}", 0o644).unwrap();
        assert_eq!(archive.len() % 512, 0);
        let mut reader = tar::Archive::new(&archive[..]);
        let entry = reader.entries().unwrap().next().unwrap().unwrap();
        assert_eq!(
            entry.path().unwrap().to_str(),
            Some("etc/caddy/odysseus.json")
        );
        assert_eq!(entry.header().mode().unwrap(), 0o644);
    }

    #[test]
    fn a_directory_archive_gives_its_own_files_only() {
        let mut builder = tar::Builder::new(Vec::new());
        for (path, body) in [
            ("app/0", "a:1\n"),
            ("app/1", "b:1\n"),
            ("app/deeper/2", "c:1\n"),
        ] {
            let mut header = tar::Header::new_ustar();
            header.set_size(body.len() as u64);
            header.set_mode(0o644);
            builder
                .append_data(&mut header, path, body.as_bytes())
                .unwrap();
        }
        let files = super::files_in(&builder.into_inner().unwrap()).unwrap();
        assert_eq!(
            files,
            vec![
                ("0".to_string(), b"a:1\n".to_vec()),
                ("1".to_string(), b"b:1\n".to_vec())
            ]
        );
    }
}
