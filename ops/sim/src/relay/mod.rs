//! The relay: the only path between regions. The core namespace routes every packet that leaves a region for
//! another into a TUN device; the relay reads it, finds the two regions from its IPv4 source and destination,
//! drops it with the link's loss rate, holds it for the link's one-way delay and writes it back, and the kernel
//! delivers it to the destination region. Each ordered pair of regions has its own FIFO delay line (one delay per
//! pair, so order is kept), which makes QUIC over UDP and TCP alike see the configured round trip, one packet or
//! segment at a time.

mod timer;
mod tun;

use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use crate::matrix::Matrix;
use crate::subnet::Subnet;
use timer::Timer;
use tun::Tun;

/// Packets a delay line holds at most (a router's buffer); more are dropped.
const LINE_CAPACITY: usize = 16_384;
/// The largest packet the relay reads.
const MAX_PACKET: usize = 65_536;

/// What the relay needs: its TUN device, the run's subnet and the regions' matrix.
pub struct Config {
    /// The TUN device's name (in the namespace the relay runs in).
    pub tun: String,
    /// The run's subnet, which says which region an address belongs to.
    pub subnet: Subnet,
    /// The links between the regions.
    pub matrix: Matrix,
}

/// The IPv4 source and destination of `packet`, or `None` if it is not an IPv4 packet.
fn addresses(packet: &[u8]) -> Option<(Ipv4Addr, Ipv4Addr)> {
    let header = packet.get(..20)?;
    (header[0] >> 4 == 4).then(|| {
        let address = |at: usize| Ipv4Addr::new(header[at], header[at + 1], header[at + 2], header[at + 3]);
        (address(12), address(16))
    })
}

/// Runs the relay until it fails; prints `ready` on standard output once it is attached to its device.
pub fn run(config: Config) -> io::Result<()> {
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(serve(config))
}

async fn serve(config: Config) -> io::Result<()> {
    let tun = Arc::new(Tun::attach(&config.tun)?);
    let n = config.matrix.regions().len();
    let mut lines = Vec::with_capacity(n * n);
    for _ in 0..n * n {
        let (sender, receiver) = mpsc::channel(LINE_CAPACITY);
        tokio::spawn(delay_line(receiver, tun.clone(), Timer::new()?));
        lines.push(sender);
    }
    writeln!(io::stdout(), "ready")?;
    let mut buf = vec![0; MAX_PACKET];
    loop {
        let len = tun.recv(&mut buf).await?;
        let arrived = Instant::now();
        let packet = &buf[..len];
        let Some((source, destination)) = addresses(packet) else { continue };
        let regions = (config.subnet.region_of(source), config.subnet.region_of(destination));
        let (Some(from), Some(to)) = regions else {
            tun.send(packet).await?;
            continue;
        };
        let link = config.matrix.link(from, to);
        if link.loss > 0.0 && rand::random::<f64>() < link.loss {
            continue;
        }
        if link.rtt.is_zero() {
            tun.send(packet).await?;
        } else {
            // A full line drops the packet, as a full router queue would.
            let _ = lines[from * n + to].try_send((arrived + link.one_way(), packet.to_vec()));
        }
    }
}

/// Writes each packet back at its due time, in arrival order.
async fn delay_line(mut packets: mpsc::Receiver<(Instant, Vec<u8>)>, tun: Arc<Tun>, timer: Timer) {
    while let Some((due, packet)) = packets.recv().await {
        if let Err(e) = timer.sleep_until(due).await {
            eprintln!("relay: the timer failed: {e}");
        }
        if let Err(e) = tun.send(&packet).await {
            eprintln!("relay: cannot write a packet back: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_packets_give_their_addresses_others_nothing() {
        let mut packet = [0u8; 28];
        packet[0] = 0x45;
        packet[12..16].copy_from_slice(&[10, 240, 0, 1]);
        packet[16..20].copy_from_slice(&[10, 240, 2, 1]);
        assert_eq!(addresses(&packet), Some((Ipv4Addr::new(10, 240, 0, 1), Ipv4Addr::new(10, 240, 2, 1))));
        packet[0] = 0x60;
        assert_eq!(addresses(&packet), None);
        assert_eq!(addresses(&packet[..10]), None);
    }
}
