//! `kv`: an actor that keeps text entries in its key-value store (`c.kv()`), for the KV end-to-end tests.

use tern_node::{Actor, ActorError, ListOptions, UserError};

/// The `kv` actor: no state of its own, everything lives in its KV store.
pub fn kv() -> Actor<()> {
    Actor::new("kv")
        .action("put", |c, (key, value): (String, String)| async move {
            c.kv().put_text(&key, &value).await?;
            Ok(())
        })
        .action("get", |c, key: String| async move { c.kv().get_text(&key).await })
        .action("delete", |c, key: String| async move { c.kv().delete(key).await })
        // Every entry under `prefix`, as `[key without the prefix, value]` pairs in key order.
        .action("list", |c, prefix: String| async move {
            let entries = c.kv().list_prefix(prefix, ListOptions::default()).await?;
            let text = |bytes: Vec<u8>| String::from_utf8_lossy(&bytes).into_owned();
            Ok(entries.into_iter().map(|(k, v)| (text(k), text(v))).collect::<Vec<_>>())
        })
        .action("deleteRange", |c, (start, end): (String, String)| async move { c.kv().delete_range(start, end).await })
        // Puts `len` bytes of `x` at `key` (values over the 64 KiB message limit cannot travel as arguments).
        .action("putFilled", |c, (key, len): (String, usize)| async move {
            c.kv().put(key, vec![b'x'; len]).await?;
            Ok(())
        })
        .action("putBatch", |c, entries: Vec<(String, String)>| async move { c.kv().put_batch(&entries).await })
        // Puts `key`, then fails: the put must not survive.
        .action("putThenFail", |c, key: String| async move {
            c.kv().put_text(&key, "doomed").await?;
            Err::<(), ActorError>(UserError::new("rejected", "the put is rolled back").into())
        })
}
