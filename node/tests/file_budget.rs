//! Awake actors beyond the database pool's capacity hold no open file, and a restarted node opens nothing per
//! sleeping actor: the process's descriptors stay bounded by the pool, not by the number of actors. (Its own test binary, so no other test opens files meanwhile.)

use std::num::NonZeroUsize;

use tern_gateway::backend::{Backend, CreateRequest};
use tern_node::Value;
use tern_node::server::{NodeConfig, open_host};
use tern_proto::key::ActorKey;

fn open_descriptors() -> usize {
    std::fs::read_dir("/proc/self/fd").expect("list /proc/self/fd").count()
}

#[tokio::test]
async fn open_files_are_bounded_by_the_pool_not_by_awake_actors() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = NodeConfig::dev("127.0.0.1:0".parse().unwrap(), dir.path().to_path_buf());
    config.max_open_databases = NonZeroUsize::new(4).unwrap();
    let host = open_host(tern_node::ready::registry(), &config).await.unwrap();
    let before = open_descriptors();
    for i in 0..60 {
        let request = CreateRequest {
            name: "counter".into(),
            key: ActorKey::new(vec![format!("k{i}")]).unwrap(),
            input: None,
            region: None,
        };
        let id = host.create_actor(request).await.unwrap().actor_id;
        host.call_action(&id, "increment", Value::Array(vec![Value::Integer(1.into())]), None).await.unwrap();
    }
    assert_eq!(host.awake_count(), 60, "every actor is still awake");
    let opened = open_descriptors().saturating_sub(before);
    // Four databases of two descriptors each (file and WAL; exclusive locking needs no shared memory), plus slack.
    assert!(opened <= 4 * 2 + 4, "60 awake actors hold {opened} descriptors");
    host.shutdown(std::time::Duration::from_secs(5)).await;
    drop(host);

    // Restarted, the node opens nothing per actor; woken one by one (each record read from `node.db`, each file
    // opened cold), the sleeping actors still hold no more than the pool.
    let before = open_descriptors();
    let host = open_host(tern_node::ready::registry(), &config).await.unwrap();
    assert!(open_descriptors().saturating_sub(before) <= 8, "a restart opens files per actor");
    let listed = host.list_actors(Some("counter"), None, 100).await.unwrap();
    assert_eq!(listed.len(), 60);
    for actor in &listed {
        let count = host.call_action(&actor.actor_id, "getCount", Value::Array(vec![]), None).await.unwrap();
        assert_eq!(count, Value::Integer(1.into()), "{} kept its count", actor.actor_id);
    }
    let opened = open_descriptors().saturating_sub(before);
    assert!(opened <= 4 * 2 + 8, "60 woken actors hold {opened} descriptors");
    host.shutdown(std::time::Duration::from_secs(5)).await;
}
