//! The hosts' copies of the journal at their boundary: the deploy lock's shell loop
//! (`host_lock::script::FENCE_LOOP`), run for real on this machine as on every server.
//! Only the holder appends; an append lands at the offset the writer read or not at all;
//! bytes of a write that was never acknowledged are cut before the next one; a reader
//! gets every copy back whole.

use odysseus_engine::journal::copy;
use odysseus_engine::journal::encode;
use odysseus_engine::machine::{Event, Fact};
use odysseus_engine::{DeploymentId, Operator, Timestamp};
use odysseus_executors::host_lock::{take_local, AppendError, Claim, LockError, LockFiles};

fn records(n: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            encode(&Event {
                at: Timestamp(1_800_000_000_000 + i as u64),
                fact: Fact::Resumed {
                    by: Operator {
                        user: "ci".into(),
                        hostname: "runner".into(),
                        pid: i as u32,
                    },
                    lock_token: 3,
                },
            })
        })
        .collect()
}

fn socket() -> String {
    // The lock's directory belongs to the engine socket's group; without an engine
    // here, root's group serves (the script reads the socket's group, or 0).
    "/var/run/docker.sock".into()
}

#[tokio::test]
async fn only_the_holder_appends_at_the_offset_it_read_and_torn_bytes_are_cut() {
    let service = format!("copytest{}", std::process::id());
    let files = LockFiles::of(&service);
    let id = DeploymentId {
        millis: 0x0194_0000_0042,
        nonce: 9,
    };
    let file = format!("{}/{}", files.journal, copy::file_name(id));
    let _ = std::fs::remove_dir_all(&files.journal);
    let all = records(5);
    let mut held = take_local(&socket(), &Claim::new(&service, "tester on this machine"))
        .await
        .expect("the lock");

    // Two appends, the second at the offset where the first ended.
    let first = copy::lines(&service, id, 0, &all[..2]);
    held.append_journal(&id.to_string(), 0, &first)
        .await
        .unwrap();
    let size = std::fs::metadata(&file).unwrap().len();
    let second = copy::lines(&service, id, 2, &all[2..3]);
    held.append_journal(&id.to_string(), size, &second)
        .await
        .unwrap();
    let text = std::fs::read(&file).unwrap();
    assert_eq!(
        copy::parse(&service, id, &text).unwrap().records,
        all[..3].to_vec()
    );

    // A writer whose idea of the copy is stale (an offset past its end) writes nothing.
    let third = copy::lines(&service, id, 3, &all[3..4]);
    let end = text.len() as u64;
    match held.append_journal(&id.to_string(), end + 7, &third).await {
        Err(AppendError::Gap(s)) => assert_eq!(s, end),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), text);

    // Half a line, as a power cut mid-append leaves: cut before the next append.
    std::fs::write(&file, [text.as_slice(), b"3 AQID"].concat()).unwrap();
    let torn = copy::parse(&service, id, &std::fs::read(&file).unwrap()).unwrap();
    assert!(torn.torn_tail);
    assert_eq!(torn.valid_bytes, end);
    held.append_journal(&id.to_string(), end, &third)
        .await
        .unwrap();
    let copy_now = copy::parse(&service, id, &std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(copy_now.records, all[..4].to_vec());
    assert!(!copy_now.torn_tail);

    // Someone else's name in the holder file (the lock released and taken by another):
    // the loop refuses, and the copy is untouched.
    let before = std::fs::read(&file).unwrap();
    std::fs::write(&files.holder, "another operator\n").unwrap();
    let fourth = copy::lines(&service, id, 4, &all[4..]);
    let at = before.len() as u64;
    match held.append_journal(&id.to_string(), at, &fourth).await {
        Err(AppendError::Lock(LockError::Lost(holder))) => assert_eq!(holder, "another operator"),
        other => panic!("{other:?}"),
    }
    assert_eq!(std::fs::read(&file).unwrap(), before);
    held.release().await;

    // The directories are the engine group's and closed to everyone else.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&files.journal)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o7777, 0o2770, "{mode:o}");
    let _ = std::fs::remove_dir_all(&files.journal);
    let _ = std::fs::remove_file(&files.lock);
    let _ = std::fs::remove_file(&files.holder);
    let _ = std::fs::remove_file(&files.pid);
}
