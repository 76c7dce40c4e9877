//! Writes the committed seed corpus, `corpus/<target>/<name>`: a few valid inputs per fuzz target, made with the
//! product's own encoders. Run from `tests/fuzz` with `cargo run --example seeds`; it rewrites the files it names
//! and leaves any others alone.

use std::path::Path;

use bytes::Bytes;
use tern_gateway::backend::CreateRequest;
use tern_node::cluster::directory::Placement;
use tern_node::cluster::directory::liveness::Liveness;
use tern_node::cluster::directory::paxos::{AcceptReply, Ballot, PrepareReply};
use tern_node::cluster::rpc::{
    self, AcceptValue, CallRefusal, CallsMessage, DirectoryMessage, ForgetActor, ForwardAction, ForwardCreate,
    ForwardDestroy, MembershipMessage, PrepareBallot, PullMembers, ReadRegister,
};
use tern_proto::messages::{ActorSpecifier, ErrorFrame, HttpQueueSendRequest, HttpQueueSendResponse, ToClient};
use tern_proto::{ClientError, Encoding, ToServer, Value};
use tern_replication::wal::{Batch, Frame, Position};
use tern_replication::wire::{self, Response};

fn main() -> std::io::Result<()> {
    for (target, encoding) in
        [("client_bare", Encoding::Bare), ("client_cbor", Encoding::Cbor), ("client_json", Encoding::Json)]
    {
        for (name, bytes) in client_messages(encoding) {
            write(target, name, &bytes)?;
        }
    }
    for (name, text) in [
        ("one_part", "room"),
        ("two_parts", "org-1/room-9"),
        ("empty_part", "\\0/x"),
        ("escapes", "a\\/b/c\\\\d"),
        ("no_parts", "/"),
        ("query_form", "org-1,room-9"),
    ] {
        write("actor_key", name, text.as_bytes())?;
    }
    let input = "oWVjb3VudAU"; // base64url of the CBOR map {"count": 5}
    for (name, text) in [
        ("by_id", "0a1b2c3d@token?x=1&y=2".to_string()),
        ("get", "counter?rvt-method=get&rvt-key=a,b&z=9".to_string()),
        (
            "get_or_create",
            format!(
                "counter?rvt-namespace=default&rvt-method=getOrCreate&rvt-key=org-1&rvt-input={input}&rvt-region=fra&rvt-crash-policy=sleep&rvt-token=t"
            ),
        ),
        ("escaped", "chat%20room?rvt-method=get&rvt-key=a%2Cb&q=%26".to_string()),
    ] {
        write("rvt_query", name, text.as_bytes())?;
    }
    let frame = |page: u32, commit_size: u32| {
        let mut bytes = [page.to_be_bytes(), commit_size.to_be_bytes()].concat();
        bytes.extend((0..16 + 512).map(|i| (i * 7 + page as usize) as u8));
        Frame::new(Bytes::from(bytes))
    };
    let same_generation =
        Batch { after: Position::new(3, 10), generation: 3, page_size: 512, frames: vec![frame(1, 0), frame(2, 2)] };
    let next_generation =
        Batch { after: Position::new(3, 12), generation: 4, page_size: 512, frames: vec![frame(1, 1)] };
    write("wal_batch", "same_generation", &same_generation.encode())?;
    write("wal_batch", "next_generation", &next_generation.encode())?;
    for (name, response) in [
        ("ok", Response::Ok(Bytes::from_static(b"\xa1\x62ok\xf5"))),
        ("failed", Response::Failed("no such actor".into())),
        ("too_large", Response::TooLarge { size: 20 << 20, limit: 16 << 20 }),
        ("unknown_service", Response::UnknownService),
    ] {
        let limit = 4096u16.to_le_bytes();
        write("peer_response", name, &[&limit[..], &wire::encode_response(&response).expect("small")].concat())?;
    }
    for (name, bytes) in peer_messages(&same_generation) {
        write("peer_messages", name, &bytes)?;
    }
    Ok(())
}

fn write(target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(name), bytes)
}

fn text(s: &str) -> Value {
    Value::Text(s.into())
}

/// A user value with what the JSON-compat form treats specially: a 64-bit integer, bytes, a float, a `$` pair.
fn user_value() -> Value {
    Value::Map(vec![
        (text("count"), Value::Integer(5.into())),
        (text("big"), Value::Integer((1u64 << 60).into())),
        (text("blob"), Value::Bytes(vec![0, 1, 254, 255])),
        (text("ratio"), Value::Float(0.25)),
        (text("pair"), Value::Array(vec![text("$x"), Value::Null])),
    ])
}

fn client_messages(encoding: Encoding) -> Vec<(&'static str, Vec<u8>)> {
    let frame = ErrorFrame {
        group: "actor".into(),
        code: "action_not_found".into(),
        message: "no action named `nope`".into(),
        metadata: Some(user_value()),
        action_id: Some(7),
        actor: Some(ActorSpecifier { actor_id: "0a1b2c3d".into(), generation: 2, key: Some("org-1/room-9".into()) }),
    };
    let args = Value::Array(vec![Value::Integer(5.into()), text("x"), user_value()]);
    vec![
        (
            "action_request",
            encoding.encode_to_server(&ToServer::ActionRequest { id: 7, name: "increment".into(), args: args.clone() }),
        ),
        (
            "subscription_request",
            encoding
                .encode_to_server(&ToServer::SubscriptionRequest { event_name: "newCount".into(), subscribe: true }),
        ),
        ("http_action_request", encoding.encode_action_request(&args)),
        (
            "http_queue_send_request",
            encoding.encode_queue_send_request(&HttpQueueSendRequest {
                body: user_value(),
                name: Some("jobs".into()),
                wait: Some(true),
                timeout: Some(1000),
            }),
        ),
        (
            "init",
            encoding.encode_to_client(&ToClient::Init { actor_id: "0a1b2c3d".into(), connection_id: "c-1".into() }),
        ),
        ("error", encoding.encode_to_client(&ToClient::Error(frame.clone()))),
        ("action_response", encoding.encode_to_client(&ToClient::ActionResponse { id: 7, output: user_value() })),
        ("event", encoding.encode_to_client(&ToClient::Event { name: "newCount".into(), args })),
        ("http_action_response", encoding.encode_action_response(&user_value())),
        (
            "http_queue_send_response",
            encoding.encode_queue_send_response(&HttpQueueSendResponse {
                status: "completed".into(),
                response: Some(user_value()),
            }),
        ),
        ("http_error", encoding.encode_error(&frame)),
    ]
}

/// Inter-node messages, each behind the selector byte with which `tern_fuzz::peer_messages` decodes its type.
fn peer_messages(batch: &Batch) -> Vec<(&'static str, Vec<u8>)> {
    let seed = |selector: u8, bytes: Bytes| [&[selector][..], &bytes].concat();
    let ballot = Ballot { round: 3, node: "iad-1".into() };
    let register = "actor/0a1b2c3d".to_string();
    let actor_id = "0a1b2c3d".to_string();
    // The replication service's call types are not public: its message is written as the CBOR value it encodes.
    let ship_frames = Value::Map(vec![(
        text("Frames"),
        Value::Map(vec![
            (text("actor_id"), text(&actor_id)),
            (text("home"), text("iad-1")),
            (text("batch"), Value::Bytes(batch.encode().to_vec())),
        ]),
    )]);
    let placement = Placement {
        actor_id: actor_id.clone(),
        name: "counter".into(),
        key: vec!["org-1".into()],
        home: "iad-1".into(),
        region: "iad".into(),
        epoch: 4,
        create_ts: 1_767_225_600_000,
        destroy_ts: None,
        home_epoch: 2,
        replicas: vec!["fra-1".into()],
        promoted_from: Some(Position::new(3, 12)),
    };
    let key = tern_proto::key::ActorKey::new(vec!["org-1".into()]).expect("a small key");
    vec![
        ("read", seed(0, rpc::encode(&DirectoryMessage::Read(ReadRegister { register: register.clone() })))),
        (
            "prepare",
            seed(
                0,
                rpc::encode(&DirectoryMessage::Prepare(PrepareBallot {
                    register: register.clone(),
                    ballot: ballot.clone(),
                })),
            ),
        ),
        (
            "accept",
            seed(
                0,
                rpc::encode(&DirectoryMessage::Accept(AcceptValue {
                    register,
                    ballot: ballot.clone(),
                    value: Some(rpc::encode(&placement).to_vec()),
                })),
            ),
        ),
        (
            "forget",
            seed(
                0,
                rpc::encode(&DirectoryMessage::Forget(ForgetActor {
                    actor_id: actor_id.clone(),
                    name: "counter".into(),
                    key: vec!["org-1".into()],
                    destroyed: true,
                })),
            ),
        ),
        (
            "create",
            seed(
                1,
                rpc::encode(&CallsMessage::Create(ForwardCreate {
                    request: CreateRequest {
                        name: "counter".into(),
                        key,
                        input: Some(user_value()),
                        region: Some("fra".into()),
                    },
                    reuse: true,
                })),
            ),
        ),
        (
            "action",
            seed(
                1,
                rpc::encode(&CallsMessage::Action(ForwardAction {
                    actor_id: actor_id.clone(),
                    action: "increment".into(),
                    args: Value::Array(vec![user_value()]),
                    params: None,
                })),
            ),
        ),
        ("destroy", seed(1, rpc::encode(&CallsMessage::Destroy(ForwardDestroy { actor_id })))),
        ("members", seed(2, rpc::encode(&MembershipMessage::Members(PullMembers)))),
        ("ship_frames", seed(3, rpc::encode(&ship_frames))),
        ("read_reply", seed(4, rpc::encode(&(ballot.clone(), Some(vec![1u8, 2, 3]))))),
        ("prepare_reply", seed(5, rpc::encode(&PrepareReply::Promised { accepted: ballot.clone(), value: None }))),
        ("accept_reply", seed(6, rpc::encode(&AcceptReply::Conflict { seen: ballot }))),
        (
            "members_reply",
            seed(7, rpc::encode(&vec!["127.0.0.1:7000".parse::<std::net::SocketAddr>().expect("an address")])),
        ),
        ("action_reply", seed(10, rpc::encode(&Ok::<Value, CallRefusal>(user_value())))),
        (
            "wrong_home",
            seed(
                10,
                rpc::encode(&Err::<Value, _>(CallRefusal::WrongHome { home: Some("fra-1".into()), epoch: Some(5) })),
            ),
        ),
        ("failed", seed(10, rpc::encode(&Err::<Value, _>(CallRefusal::Failed(ClientError::action_not_found("nope")))))),
        ("placement", seed(16, rpc::encode(&placement))),
        ("liveness", seed(17, rpc::encode(&Liveness { epoch: 3, expiration_ms: 1_767_225_609_000 }))),
    ]
}
