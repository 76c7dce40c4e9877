//! The static voter set and how this node reaches it: each voter is a node id, with or without its QUIC address
//! (`ID@HOST:PORT` or `ID`; without one, membership supplies it). This node's own vote is cast locally.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tern_replication::Transport;

use super::acceptor::Acceptor;
use super::paxos::{AcceptReply, Ballot, PrepareReply, RegisterValue, Voters};
use crate::cluster::Members;
use crate::cluster::rpc::{self, AcceptValue, PrepareBallot, ReadRegister};

/// How long a vote may take before it counts as missing.
const VOTE_TIMEOUT: Duration = Duration::from_secs(2);

/// One voter of the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterSpec {
    /// The voter's node id (its certificate's name).
    pub id: String,
    /// Where to reach it; `None` to take its QUIC address from membership.
    pub addr: Option<SocketAddr>,
}

impl std::str::FromStr for VoterSpec {
    type Err = String;

    /// Parses `ID` or `ID@HOST:PORT` (an IP address and port).
    fn from_str(spec: &str) -> Result<Self, String> {
        let (id, addr) = match spec.split_once('@') {
            Some((id, addr)) => {
                let addr = addr.parse().map_err(|_| format!("`{addr}` is not an IP:PORT address"))?;
                (id, Some(addr))
            }
            None => (spec, None),
        };
        if id.is_empty() {
            return Err(format!("voter `{spec}` has no node id"));
        }
        Ok(VoterSpec { id: id.to_string(), addr })
    }
}

/// The voters as this node reaches them: its own acceptor directly, the others over the transport.
pub struct TransportVoters {
    specs: Vec<VoterSpec>,
    local_id: String,
    acceptor: Arc<Acceptor>,
    transport: Transport,
    members: Members,
}

impl TransportVoters {
    /// The voters `specs`, reached from node `local_id` through `transport`, with addresses from `members` where a
    /// spec has none.
    pub fn new(
        specs: Vec<VoterSpec>,
        local_id: String,
        acceptor: Arc<Acceptor>,
        transport: Transport,
        members: Members,
    ) -> Self {
        Self { specs, local_id, acceptor, transport, members }
    }

    fn addr(&self, index: usize) -> Result<SocketAddr, String> {
        let spec = &self.specs[index];
        if let Some(addr) = spec.addr {
            return Ok(addr);
        }
        self.members.get(&spec.id).map(|member| member.node.quic_addr).ok_or_else(|| {
            format!("voter {} is not known to membership yet (give its address as ID@HOST:PORT)", spec.id)
        })
    }

    fn is_local(&self, index: usize) -> bool {
        self.specs[index].id == self.local_id
    }
}

impl Voters for TransportVoters {
    fn count(&self) -> usize {
        self.specs.len()
    }

    async fn read(&self, index: usize, register: &str) -> Result<(Ballot, RegisterValue), String> {
        if self.is_local(index) {
            return self.acceptor.read(register).await.map_err(|e| e.to_string());
        }
        let call = ReadRegister { register: register.to_string() };
        rpc::ask(&self.transport, self.addr(index)?, call, VOTE_TIMEOUT).await.map_err(|e| e.to_string())
    }

    async fn prepare(&self, index: usize, register: &str, ballot: &Ballot) -> Result<PrepareReply, String> {
        if self.is_local(index) {
            return self.acceptor.prepare(register, ballot).await.map_err(|e| e.to_string());
        }
        let call = PrepareBallot { register: register.to_string(), ballot: ballot.clone() };
        rpc::ask(&self.transport, self.addr(index)?, call, VOTE_TIMEOUT).await.map_err(|e| e.to_string())
    }

    async fn accept(
        &self,
        index: usize,
        register: &str,
        ballot: &Ballot,
        value: &RegisterValue,
    ) -> Result<AcceptReply, String> {
        if self.is_local(index) {
            return self.acceptor.accept(register, ballot, value.clone()).await.map_err(|e| e.to_string());
        }
        let call = AcceptValue { register: register.to_string(), ballot: ballot.clone(), value: value.clone() };
        rpc::ask(&self.transport, self.addr(index)?, call, VOTE_TIMEOUT).await.map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn voters_are_ids_with_optional_addresses() {
        let with: VoterSpec = "n1@127.0.0.1:7420".parse().unwrap();
        assert_eq!(with, VoterSpec { id: "n1".into(), addr: Some("127.0.0.1:7420".parse().unwrap()) });
        assert_eq!("n2".parse::<VoterSpec>().unwrap(), VoterSpec { id: "n2".into(), addr: None });
        assert!("@127.0.0.1:7420".parse::<VoterSpec>().is_err());
        assert!("n1@nowhere".parse::<VoterSpec>().is_err());
    }
}
