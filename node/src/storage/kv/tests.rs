//! The KV functions on a real libSQL database in a temporary directory.

use super::*;
use crate::storage::ActorDb;

/// A fresh actor database with its schema, inside an open transaction (as during a turn).
struct Fixture {
    db: ActorDb,
    _database: libsql::Database,
    _dir: tempfile::TempDir,
}

impl Fixture {
    async fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let (database, conn, sandbox) = crate::storage::sandbox::open(dir.path().join("actor.db")).await.unwrap();
        let db = ActorDb::new(conn, sandbox);
        db.open_actor("0123", "kv", "k").await.unwrap();
        db.begin().await.unwrap();
        Fixture { db, _database: database, _dir: dir }
    }

    fn conn(&self) -> &Connection {
        self.db.connection()
    }

    async fn keys(&self, prefix: &[u8], options: ListOptions) -> Vec<Vec<u8>> {
        list_prefix(self.conn(), prefix, options).await.unwrap().into_iter().map(|(k, _)| k).collect()
    }
}

fn code(err: KvError) -> String {
    match err {
        KvError::Invalid(e) => e.qualified_code(),
        KvError::Storage(e) => panic!("storage error: {e}"),
    }
}

#[tokio::test]
async fn put_get_delete_text_and_binary() {
    let f = Fixture::new().await;
    let conn = f.conn();
    assert_eq!(get(conn, b"missing").await.unwrap(), None);
    put(conn, b"greeting", "héllo".as_bytes()).await.unwrap();
    put(conn, &[0, 0xff, 7], &[1, 2, 3]).await.unwrap();
    put(conn, b"empty", b"").await.unwrap();
    put(conn, b"", b"empty key").await.unwrap();
    assert_eq!(get(conn, b"greeting").await.unwrap().as_deref(), Some("héllo".as_bytes()));
    assert_eq!(get(conn, &[0, 0xff, 7]).await.unwrap(), Some(vec![1, 2, 3]));
    assert_eq!(get(conn, b"empty").await.unwrap(), Some(vec![]));
    assert_eq!(get(conn, b"").await.unwrap(), Some(b"empty key".to_vec()));
    put(conn, b"greeting", b"bye").await.unwrap();
    let (value, ts) = get_entry(conn, b"greeting").await.unwrap().unwrap();
    assert_eq!(value, b"bye");
    assert!((crate::clock::now_ms() - ts).abs() < 60_000, "update_ts is now: {ts}");
    delete(conn, b"greeting").await.unwrap();
    delete(conn, b"never there").await.unwrap();
    assert_eq!(get(conn, b"greeting").await.unwrap(), None);
}

#[tokio::test]
async fn keys_compare_bytewise() {
    let f = Fixture::new().await;
    let keys: Vec<Vec<u8>> =
        vec![vec![], vec![0], vec![1], vec![1, 0], vec![0x7f], vec![0x80], vec![0xff], vec![0xff, 0xff], b"a".to_vec()];
    let mut shuffled = keys.clone();
    shuffled.reverse();
    shuffled.swap(1, 5);
    for key in &shuffled {
        put(f.conn(), key, b"v").await.unwrap();
    }
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(f.keys(b"", ListOptions::default()).await, sorted);
    sorted.reverse();
    assert_eq!(f.keys(b"", ListOptions { reverse: true, limit: None }).await, sorted);
    // Text keys are their UTF-8 bytes: "é" (c3 a9) sorts after "z" and 0x80.
    put(f.conn(), "é".as_bytes(), b"v").await.unwrap();
    put(f.conn(), b"z", b"v").await.unwrap();
    let range = list_range(f.conn(), b"a", &[0xc4], ListOptions::default()).await.unwrap();
    let range: Vec<_> = range.into_iter().map(|(k, _)| k).collect();
    assert_eq!(range, vec![b"a".to_vec(), b"z".to_vec(), vec![0x7f], vec![0x80], "é".as_bytes().to_vec()]);
}

#[tokio::test]
async fn prefix_lists_strip_the_prefix() {
    let f = Fixture::new().await;
    for key in ["use", "user:", "user:1", "user:2", "user:10", "user;", "users"] {
        put(f.conn(), key.as_bytes(), key.as_bytes()).await.unwrap();
    }
    let entries = list_prefix(f.conn(), b"user:", ListOptions::default()).await.unwrap();
    let expected: Vec<(Vec<u8>, Vec<u8>)> = [("", "user:"), ("1", "user:1"), ("10", "user:10"), ("2", "user:2")]
        .iter()
        .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
        .collect();
    assert_eq!(entries, expected);
    // A prefix ending in 0xff has no simple successor: the bound carries into the previous byte.
    for key in [vec![1, 0xff], vec![1, 0xff, 0], vec![1, 0xff, 0xff, 9], vec![2], vec![1, 0xfe, 0xff]] {
        put(f.conn(), &key, b"v").await.unwrap();
    }
    assert_eq!(f.keys(&[1, 0xff], ListOptions::default()).await, vec![vec![], vec![0], vec![0xff, 9]]);
    assert_eq!(f.keys(&[0xff], ListOptions::default()).await, Vec::<Vec<u8>>::new());
}

#[tokio::test]
async fn reverse_and_limit() {
    let f = Fixture::new().await;
    let entries: Vec<(String, String)> = (0..10).map(|i| (format!("k{i}"), format!("v{i}"))).collect();
    put_batch(f.conn(), &entries).await.unwrap();
    let keys = |v: Vec<Vec<u8>>| v.into_iter().map(|k| String::from_utf8(k).unwrap()).collect::<Vec<_>>();
    assert_eq!(keys(f.keys(b"k", ListOptions { reverse: false, limit: Some(3) }).await), ["0", "1", "2"]);
    assert_eq!(keys(f.keys(b"k", ListOptions { reverse: true, limit: Some(3) }).await), ["9", "8", "7"]);
    assert_eq!(f.keys(b"k", ListOptions { reverse: true, limit: Some(0) }).await.len(), 0);
    let range = list_range(f.conn(), b"k2", b"k5", ListOptions { reverse: true, limit: Some(2) }).await.unwrap();
    assert_eq!(range, vec![(b"k4".to_vec(), b"v4".to_vec()), (b"k3".to_vec(), b"v3".to_vec())]);
}

#[tokio::test]
async fn lists_default_to_16384_entries() {
    let f = Fixture::new().await;
    let keys: Vec<[u8; 2]> = (0..=DEFAULT_LIST_LIMIT as u16).map(u16::to_be_bytes).collect();
    for chunk in keys.chunks(MAX_BATCH_ENTRIES) {
        let entries: Vec<_> = chunk.iter().map(|k| (k, b"")).collect();
        put_batch(f.conn(), &entries).await.unwrap();
    }
    let listed = list_range(f.conn(), b"", &[0xff], ListOptions::default()).await.unwrap();
    assert_eq!(listed.len(), DEFAULT_LIST_LIMIT);
    assert_eq!(listed.last().unwrap().0, keys[DEFAULT_LIST_LIMIT - 1]);
    let all = list_prefix(f.conn(), b"", ListOptions { reverse: false, limit: Some(20_000) }).await.unwrap();
    assert_eq!(all.len(), DEFAULT_LIST_LIMIT + 1);
}

#[tokio::test]
async fn ranges_are_half_open() {
    let f = Fixture::new().await;
    for key in ["a", "b", "b\0", "c", "d"] {
        put(f.conn(), key.as_bytes(), b"v").await.unwrap();
    }
    let listed = list_range(f.conn(), b"b", b"d", ListOptions::default()).await.unwrap();
    assert_eq!(listed.into_iter().map(|(k, _)| k).collect::<Vec<_>>(), [&b"b"[..], b"b\0", b"c"]);
    assert_eq!(list_range(f.conn(), b"d", b"b", ListOptions::default()).await.unwrap(), vec![]);
    assert_eq!(delete_range(f.conn(), b"b", b"d").await.unwrap(), 3);
    assert_eq!(delete_range(f.conn(), b"d", b"a").await.unwrap(), 0);
    assert_eq!(f.keys(b"", ListOptions::default()).await, [b"a".to_vec(), b"d".to_vec()]);
}

#[tokio::test]
async fn batches_keep_order_and_are_all_or_nothing() {
    let f = Fixture::new().await;
    put_batch(f.conn(), &[("a", "1"), ("b", "2"), ("c", "3")]).await.unwrap();
    let got = get_batch(f.conn(), &["c", "missing", "a", "\u{3}"]).await.unwrap();
    assert_eq!(got, vec![Some(b"3".to_vec()), None, Some(b"1".to_vec()), None]);
    let bad = vec![("d".to_string(), "4".to_string()), ("x".repeat(MAX_KEY_BYTES + 1), "5".to_string())];
    assert_eq!(code(put_batch(f.conn(), &bad).await.unwrap_err()), "kv.key_too_large");
    assert_eq!(get(f.conn(), b"d").await.unwrap(), None, "nothing of a refused batch is written");
    assert_eq!(code(delete_batch(f.conn(), &["a", "\u{3}"]).await.unwrap_err()), "kv.reserved_key");
    assert_eq!(get(f.conn(), b"a").await.unwrap(), Some(b"1".to_vec()));
    delete_batch(f.conn(), &["a", "b"]).await.unwrap();
    assert_eq!(f.keys(b"", ListOptions::default()).await, [b"c".to_vec()]);
}

#[tokio::test]
async fn limits_are_catalogue_errors() {
    let f = Fixture::new().await;
    let conn = f.conn();
    let key = vec![b'k'; MAX_KEY_BYTES];
    put(conn, &key, b"at the limit").await.unwrap();
    let long_key = vec![b'k'; MAX_KEY_BYTES + 1];
    assert_eq!(code(put(conn, &long_key, b"v").await.unwrap_err()), "kv.key_too_large");
    assert_eq!(code(get(conn, &long_key).await.unwrap_err()), "kv.key_too_large");
    assert_eq!(code(delete(conn, &long_key).await.unwrap_err()), "kv.key_too_large");
    assert_eq!(code(list_prefix(conn, &long_key, ListOptions::default()).await.unwrap_err()), "kv.key_too_large");
    put(conn, b"big", &vec![0; MAX_VALUE_BYTES]).await.unwrap();
    assert_eq!(code(put(conn, b"big", &vec![0; MAX_VALUE_BYTES + 1]).await.unwrap_err()), "kv.value_too_large");
    assert_eq!(get(conn, b"big").await.unwrap().unwrap().len(), MAX_VALUE_BYTES);
    let many: Vec<_> = (0..=MAX_BATCH_ENTRIES).map(|i| (i.to_string(), "v")).collect();
    assert_eq!(code(put_batch(conn, &many).await.unwrap_err()), "kv.batch_too_large");
    let many_keys: Vec<String> = (0..=MAX_BATCH_ENTRIES).map(|i| i.to_string()).collect();
    assert_eq!(code(get_batch(conn, &many_keys).await.unwrap_err()), "kv.batch_too_large");
    assert_eq!(code(delete_batch(conn, &many_keys).await.unwrap_err()), "kv.batch_too_large");
    let heavy: Vec<_> = (0..8).map(|i| (vec![b'h', i], vec![0; MAX_VALUE_BYTES])).collect();
    assert_eq!(code(put_batch(conn, &heavy).await.unwrap_err()), "kv.batch_too_large");
    assert_eq!(get(conn, b"h\0").await.unwrap(), None);
    put_batch(conn, &heavy[..7]).await.unwrap();
}

#[tokio::test]
async fn the_reserved_key_is_out_of_reach() {
    let f = Fixture::new().await;
    let conn = f.conn();
    assert_eq!(code(put(conn, RESERVED_KEY, b"mine").await.unwrap_err()), "kv.reserved_key");
    assert_eq!(code(delete(conn, RESERVED_KEY).await.unwrap_err()), "kv.reserved_key");
    assert_eq!(code(put_batch(conn, &[(RESERVED_KEY, b"x")]).await.unwrap_err()), "kv.reserved_key");
    // Keys that merely start with 0x03 are ordinary.
    put(conn, &[3, 0], b"ok").await.unwrap();
    // Even a row put there behind the store's back stays invisible to reads and lists.
    conn.execute("INSERT INTO _tern_kv (key, value, update_ts) VALUES (x'03', x'00', 0)", ()).await.unwrap();
    assert_eq!(get(conn, RESERVED_KEY).await.unwrap(), None);
    assert_eq!(f.keys(&[3], ListOptions::default()).await, vec![vec![0]]);
    let all = list_range(conn, b"", &[4], ListOptions { reverse: true, limit: None }).await.unwrap();
    assert_eq!(all, vec![(vec![3, 0], b"ok".to_vec())]);
}

#[tokio::test]
async fn writes_roll_back_with_the_savepoint_and_commit_with_the_turn() {
    let f = Fixture::new().await;
    put(f.conn(), b"kept", b"1").await.unwrap();
    f.db.savepoint().await.unwrap();
    put(f.conn(), b"undone", b"2").await.unwrap();
    delete(f.conn(), b"kept").await.unwrap();
    f.db.rollback_savepoint().await.unwrap();
    f.db.commit().await.unwrap();
    assert_eq!(get(f.conn(), b"kept").await.unwrap(), Some(b"1".to_vec()));
    assert_eq!(get(f.conn(), b"undone").await.unwrap(), None);
}
