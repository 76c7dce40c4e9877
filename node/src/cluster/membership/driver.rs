//! The membership task: owns foca (which is not `Sync`), feeds it the transport's datagrams, its own timer events
//! and the handle's commands, sends what it asks to send, and keeps the membership view in line with it.

use std::num::NonZeroUsize;

use bytes::Bytes;
use foca::{AccumulatingRuntime, Foca, OwnedNotification, Timer, TimerToken};
use rand::rngs::StdRng;
use tern_replication::{Datagram, Transport};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};
use tracing::{debug, info, warn};

use super::codec::{self, CborCodec};
use super::identity::NodeInfo;
use super::load::{Load, LoadHandler, LoadRecord};
use super::members::{MemberState, Table};
use super::profile::Timing;
use super::timers::Timers;

type Swim = Foca<NodeInfo, CborCodec, StdRng, LoadHandler>;

/// What the [`Membership`](super::Membership) handle asks of the task.
pub(super) enum MembershipCommand {
    /// Announce this node to a seed.
    Announce(NodeInfo),
    /// This node's load changed.
    SetLoad(Load),
    /// Leave the cluster, then stop; answered once the farewell had time to reach the peers.
    Leave(oneshot::Sender<()>),
}

/// The membership task's state.
pub(super) struct Driver {
    foca: Swim,
    runtime: AccumulatingRuntime<NodeInfo>,
    timers: Timers<Timer<NodeInfo>>,
    transport: Transport,
    /// Datagrams being handed to the transport (which may have to dial first).
    sending: JoinSet<()>,
    view: watch::Sender<Table>,
    timing: Timing,
    max_packet_size: NonZeroUsize,
    /// The cluster size foca's configuration was made for.
    sized_for: usize,
    /// The token of the last timer foca scheduled, which is its current one (see [`carry_over`]).
    token: Option<TimerToken>,
    /// This node's latest load record.
    load: LoadRecord,
    /// Set when a member came up (this node re-broadcasts its load so that the newcomer learns it) or this node
    /// rejoined as a new generation.
    publish_pending: bool,
    left: bool,
}

impl Driver {
    pub(super) fn new(
        local: NodeInfo,
        transport: Transport,
        view: watch::Sender<Table>,
        timing: Timing,
        max_packet_size: NonZeroUsize,
    ) -> Self {
        let config = timing.foca_config(1, max_packet_size);
        let handler = LoadHandler::new(view.clone());
        let load = LoadRecord { node: local.id.clone(), generation: local.generation, seq: 0, load: Load::default() };
        Self {
            foca: Foca::with_custom_broadcast(local, config, rand::make_rng(), CborCodec, handler),
            runtime: AccumulatingRuntime::new(),
            timers: Timers::new(),
            token: None,
            transport,
            sending: JoinSet::new(),
            view,
            timing,
            max_packet_size,
            sized_for: 1,
            load,
            publish_pending: false,
            left: false,
        }
    }

    /// Runs until the node leaves, or until every handle is dropped (then it stops without a word, as a crash
    /// would, and the cluster finds out by probing).
    pub(super) async fn run(
        mut self,
        mut commands: mpsc::Receiver<MembershipCommand>,
        mut datagrams: mpsc::Receiver<Datagram>,
    ) {
        let mut refresh = tokio::time::interval(self.timing.load_refresh);
        refresh.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            let due = self.timers.next_due();
            tokio::select! {
                command = commands.recv() => match command {
                    Some(MembershipCommand::Announce(seed)) => self.announce(seed),
                    Some(MembershipCommand::SetLoad(load)) => self.set_load(load),
                    Some(MembershipCommand::Leave(done)) => {
                        self.leave().await;
                        let _ = done.send(());
                        return;
                    }
                    None => return,
                },
                Some(datagram) = datagrams.recv() => self.datagram(datagram),
                () = tokio::time::sleep_until(due.unwrap_or_else(Instant::now)), if due.is_some() => self.fire_timers(),
                _ = refresh.tick() => self.publish_load(),
            }
            self.flush();
        }
    }

    fn announce(&mut self, seed: NodeInfo) {
        debug!(seed = %seed.id, addr = %seed.quic_addr, "announcing to a seed");
        let result = self.foca.announce(seed, &mut self.runtime);
        self.check("announce", result);
    }

    fn set_load(&mut self, load: Load) {
        if load != self.load.load {
            self.load.load = load;
            self.publish_load();
        }
    }

    fn datagram(&mut self, datagram: Datagram) {
        // Only a node's own certificate speaks for it: a packet from `b` claiming to come from `a` is dropped.
        match codec::claimed_sender(&datagram.payload) {
            Ok(sender) if sender.id == datagram.peer.name => {
                let result = self.foca.handle_data(&datagram.payload, &mut self.runtime);
                self.check("packet", result);
            }
            Ok(sender) => warn!(
                peer = %datagram.peer.name, claimed = %sender.id,
                "dropped a membership packet sent on behalf of another node"
            ),
            Err(e) => debug!(peer = %datagram.peer.name, "dropped an undecodable membership packet: {e}"),
        }
    }

    fn fire_timers(&mut self) {
        let now = Instant::now();
        while let Some(timer) = self.timers.pop_due(now) {
            let timer = carry_over(timer, self.token);
            if refuted(&timer, self.foca.iter_membership_state()) {
                continue;
            }
            let result = self.foca.handle_timer(timer, &mut self.runtime);
            self.check("timer", result);
        }
    }

    /// Broadcasts this node's load as a new record (foca stores it in the view through the handler).
    fn publish_load(&mut self) {
        self.publish_pending = false;
        self.load.generation = self.foca.identity().generation;
        self.load.seq += 1;
        let result = codec::to_bytes(&self.load)
            .map_err(|e| foca::Error::CustomBroadcast(Box::new(e)))
            .and_then(|bytes| self.foca.add_broadcast(&bytes))
            .and_then(|_| self.foca.broadcast(&mut self.runtime));
        self.check("load broadcast", result);
    }

    /// Carries out what foca asked for (sends, timers, notifications) until nothing is left, then updates the view.
    fn flush(&mut self) {
        while self.sending.try_join_next().is_some() {}
        loop {
            while let Some((to, data)) = self.runtime.to_send() {
                self.send(to, data);
            }
            while let Some((after, timer)) = self.runtime.to_schedule() {
                self.token = token_of(&timer).or(self.token);
                self.timers.schedule(timer, after);
            }
            while let Some(notification) = self.runtime.to_notify() {
                self.notified(notification);
            }
            if self.publish_pending && !self.left {
                self.publish_load();
            }
            if self.runtime.backlog() == 0 {
                break;
            }
        }
        self.sync_view();
    }

    fn send(&mut self, to: NodeInfo, data: Bytes) {
        let transport = self.transport.clone();
        self.sending.spawn(async move {
            if let Err(e) = transport.send_datagram(to.quic_addr, data).await {
                debug!(peer = %to.id, addr = %to.quic_addr, "membership packet not sent: {e}");
            }
        });
    }

    fn notified(&mut self, notification: OwnedNotification<NodeInfo>) {
        match notification {
            OwnedNotification::MemberUp(node) => {
                info!(node = %node.id, region = %node.region, generation = node.generation, "member up");
                self.publish_pending = true;
            }
            OwnedNotification::MemberDown(node) => info!(node = %node.id, region = %node.region, "member down"),
            OwnedNotification::Rename(old, new) => {
                info!(node = %new.id, from = old.generation, to = new.generation, "member restarted");
            }
            OwnedNotification::Rejoin(node) => {
                warn!(
                    generation = node.generation,
                    "the cluster declared this node down; rejoined as a new generation"
                );
                // Peers attach only a load of the node's current generation.
                self.publish_pending = true;
            }
            OwnedNotification::Active => info!("joined the cluster"),
            OwnedNotification::Idle => warn!("no live member left: this node is alone"),
            OwnedNotification::Defunct => info!("left the cluster"),
        }
    }

    /// Copies foca's membership into the view and resizes foca's configuration when the cluster size changed.
    fn sync_view(&mut self) {
        let local = self.foca.identity();
        let state = if self.left { MemberState::Down } else { MemberState::Alive };
        let foca = &self.foca;
        self.view.send_if_modified(|table| table.set_local(local, state) | table.sync(foca.iter_membership_state()));
        let size = self.view.borrow().cluster_size();
        if size != self.sized_for {
            self.sized_for = size;
            let result = self.foca.set_config(self.timing.foca_config(size, self.max_packet_size));
            self.check("resize", result);
        }
    }

    /// Leaves the cluster: foca tells a few members, a second round tells a few more, and the task waits for the
    /// packets to be handed to the transport and for about a round trip, so they arrive before it closes.
    async fn leave(&mut self) {
        self.left = true;
        let result = self.foca.leave_cluster(&mut self.runtime).and_then(|()| self.foca.gossip(&mut self.runtime));
        self.check("leave", result);
        self.flush();
        let handed_over = async { while self.sending.join_next().await.is_some() {} };
        let _ = tokio::time::timeout(self.timing.probe_rtt, handed_over).await;
        tokio::time::sleep(self.timing.probe_rtt).await;
    }

    /// Logs what foca refused. Most refusals are expected (stale or duplicate packets, a peer that restarted) and
    /// harmless, so they are debug lines.
    fn check(&self, what: &str, result: Result<(), foca::Error>) {
        if let Err(e) = result {
            debug!(node = %self.foca.identity().id, "membership {what}: {e}");
        }
    }
}

/// Whether `timer` ends a suspicion that was refuted meanwhile (the member's incarnation moved on, or the member is
/// gone), given foca's membership `state`. foca 2.0.0 still tells the member to "turn undead" then, and the member
/// would declare itself down and rejoin as a new generation over a mere refuted suspicion; such a timer has nothing
/// else left to do, so the task drops it instead.
fn refuted<'a>(timer: &Timer<NodeInfo>, mut state: impl Iterator<Item = &'a foca::Member<NodeInfo>>) -> bool {
    let Timer::ChangeSuspectToDown { member_id, incarnation, .. } = timer else { return false };
    !state.any(|member| member.id() == member_id && member.incarnation() == *incarnation)
}

/// The token foca gave `timer`, if it carries one.
fn token_of<T>(timer: &Timer<T>) -> Option<TimerToken> {
    match timer {
        Timer::ProbeRandomMember(token)
        | Timer::PeriodicAnnounce(token)
        | Timer::PeriodicAnnounceDown(token)
        | Timer::PeriodicGossip(token)
        | Timer::SendIndirectProbe { token, .. }
        | Timer::ChangeSuspectToDown { token, .. } => Some(*token),
        Timer::RemoveDown(_) => None,
    }
}

/// A suspicion's timer, carried over to foca's current `token`. foca renews its token when this node rejoins as a
/// new generation, and ignores every timer it scheduled before. A member that was suspect then would stay suspect
/// in this node's view for good, since nothing schedules its timer again and the member, having long stopped
/// hearing of the suspicion, never refutes it. (Seen under load after a flapping partition: four nodes that had
/// rejoined listed a fifth, live node as suspect 90 s after the network healed.) Carried over, the timer does
/// only what foca would have done: declare the member down if it is still suspect at the same incarnation.
fn carry_over(timer: Timer<NodeInfo>, token: Option<TimerToken>) -> Timer<NodeInfo> {
    match (timer, token) {
        (Timer::ChangeSuspectToDown { member_id, incarnation, .. }, Some(token)) => {
            Timer::ChangeSuspectToDown { member_id, incarnation, token }
        }
        (timer, _) => timer,
    }
}

#[cfg(test)]
mod tests {
    use foca::State;

    use super::*;

    /// Member `b`, first generation.
    fn member_b() -> NodeInfo {
        NodeInfo {
            id: "b".into(),
            generation: 1,
            region: "iad".into(),
            zone: None,
            gateway_url: String::new(),
            quic_addr: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn only_a_standing_suspicion_is_carried_out() {
        let node = member_b();
        let timer = |incarnation| Timer::ChangeSuspectToDown { member_id: node.clone(), incarnation, token: 0 };
        let suspect = [foca::Member::new(node.clone(), 3, State::Suspect)];
        assert!(!refuted(&timer(3), suspect.iter()), "still suspect: declare it down");
        assert!(refuted(&timer(2), suspect.iter()), "refuted by a higher incarnation");
        assert!(refuted(&timer(3), [].iter()), "forgotten");
        assert!(!refuted(&Timer::ProbeRandomMember(0), [].iter()), "other timers always run");
    }

    #[test]
    fn a_suspicion_outlives_a_change_of_token_and_nothing_else_does() {
        let node = member_b();
        let suspicion = Timer::ChangeSuspectToDown { member_id: node.clone(), incarnation: 3, token: 7 };
        assert_eq!(token_of(&suspicion), Some(7));
        assert_eq!(
            carry_over(suspicion.clone(), Some(8)),
            Timer::ChangeSuspectToDown { member_id: node.clone(), incarnation: 3, token: 8 }
        );
        assert_eq!(carry_over(suspicion.clone(), None), suspicion, "no token seen yet: left as it is");
        assert_eq!(
            carry_over(Timer::ProbeRandomMember(7), Some(8)),
            Timer::ProbeRandomMember(7),
            "stale probes stay stale"
        );
        assert_eq!(token_of(&Timer::RemoveDown(node)), None);
    }
}
