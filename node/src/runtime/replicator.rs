//! The one point where the runtime meets replication: between an actor's commit and its replies.

use tern_gateway::backend::ReplicaSet;
use tern_proto::ClientError;

use crate::sdk::definition::BoxFuture;
use crate::storage::ActorDb;

/// What the node does with an actor's database as the runtime uses it (implemented by [`crate::replica`] on a
/// cluster node; a single node has none). Both calls run on the actor's own task, between its statements, so they
/// may use the database's connection.
pub(crate) trait Replicator: Send + Sync {
    /// The actor's database is open for a turn and nothing has written to it yet. A replicated database takes its
    /// checkpoints over here, before anything could checkpoint it. An error refuses the turn: its requests get
    /// the error as it is, and the connection's checkpoints stay off until it closes, since its WAL may be
    /// replication's ([`ActorDb::wal_owner_pending`]).
    fn opened(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>>;

    /// A turn committed. Its replies and events leave when the returned future resolves: at once in `async` mode,
    /// once a replica in another failure domain holds the commit in `sync` mode (an error fails the turn's replies;
    /// the commit itself stands).
    fn committed(&self, actor_id: &str, db: &ActorDb) -> BoxFuture<Result<(), ClientError>>;

    /// The home (this node) and replicas of an actor homed here.
    fn replica_set(&self, actor_id: &str) -> BoxFuture<ReplicaSet>;
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::sync::Arc;

    use tern_gateway::backend::{Backend, CreateRequest};
    use tern_proto::key::ActorKey;

    use super::*;
    use crate::server::{NodeConfig, open_host};
    use crate::{Actor, Host, Registry, Value};

    /// Replication on a node whose lease ran out: it cannot look any actor up, so it refuses every open.
    struct LeaseGone;

    impl Replicator for LeaseGone {
        fn opened(&self, _: &str, _: &ActorDb) -> BoxFuture<Result<(), ClientError>> {
            Box::pin(async { Err(ClientError::unavailable("this node cannot confirm its lease")) })
        }

        fn committed(&self, _: &str, _: &ActorDb) -> BoxFuture<Result<(), ClientError>> {
            panic!("nothing commits on a node whose every open is refused")
        }

        fn replica_set(&self, _: &str) -> BoxFuture<ReplicaSet> {
            panic!("no replica set is asked for in this test")
        }
    }

    /// An actor that adds a row to its `notes` table per `add`.
    fn notes() -> Actor<()> {
        Actor::new("notes")
            .create_state(|_: Option<Value>| Ok(()))
            .on_create(|c, _: Option<Value>| async move {
                c.sql().execute("CREATE TABLE notes (v INTEGER)", ()).await?;
                Ok(())
            })
            .action("add", |c, ()| async move {
                c.sql().execute("INSERT INTO notes VALUES (1)", ()).await?;
                Ok(())
            })
    }

    async fn call(host: &Host, id: &str, action: &str) -> Result<Value, ClientError> {
        host.call_action(id, action, Value::Array(vec![]), None).await
    }

    fn wal_len(db_path: &Path) -> Option<u64> {
        let mut wal = db_path.as_os_str().to_owned();
        wal.push("-wal");
        std::fs::metadata(PathBuf::from(wal)).ok().map(|meta| meta.len())
    }

    /// A replicated actor's WAL belongs to replication, which takes each connection's checkpoints over when the
    /// runtime tells it the database is open. When it refuses the open instead (here: the node's lease is gone),
    /// the connection must not checkpoint when it closes: that would move the WAL's frames into the file and
    /// remove the WAL behind replication's back. The WAL stays, whole, and the next open recovers it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_connection_replication_refused_keeps_its_wal_when_it_closes() {
        let dir = tempfile::tempdir().unwrap();
        let config = NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.path().join("data"));
        let host = open_host(Registry::new().register(notes()), &config).await.expect("a node");
        let request = CreateRequest {
            name: "notes".into(),
            key: ActorKey::new(vec!["a".into()]).unwrap(),
            input: None,
            region: None,
        };
        let id = host.create_actor(request).await.expect("created").actor_id;
        let core = host.core.clone();
        let path = core.data_dir.actor_db_path(&id);

        // What replication does with a streamed actor's connection: its checkpoints off, so a close keeps the WAL.
        let db = core.pool.connection(&id, &path, core.synchronous()).await.unwrap();
        // SAFETY: the pool's connection is open while `db` lives, and no turn uses it now.
        assert_eq!(unsafe { libsql::ffi::libsql_wal_disable_checkpoint(db.raw_handle()) }, libsql::ffi::SQLITE_OK);
        db.checkpoints_taken_over();
        call(&host, &id, "add").await.expect("added");
        drop(db);
        core.pool.close(&id);
        let kept = wal_len(&path).expect("replication's WAL outlives the connection");
        assert!(kept > 0);

        let _ = core.replicator.set(Arc::new(LeaseGone));
        let refused = call(&host, &id, "add").await.expect_err("replication refused the open");
        assert_eq!(refused.code, "unavailable", "{refused:?}");
        core.pool.close(&id);
        host.shutdown(std::time::Duration::from_secs(5)).await;
        assert_eq!(wal_len(&path), Some(kept), "the refused connection closed without a checkpoint");

        // The next open recovers the WAL: the acknowledged row is there.
        let file = libsql::Builder::new_local(&path).build().await.unwrap();
        let mut rows = file.connect().unwrap().query("SELECT count(*) FROM notes", ()).await.unwrap();
        assert_eq!(rows.next().await.unwrap().unwrap().get::<i64>(0).unwrap(), 1);
    }
}
