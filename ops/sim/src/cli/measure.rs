//! `tern-sim measure`: the relay's own latency. A simulation of three regions with one host each: `here`, `zero`
//! (0 ms from `here`) and `far` (the configured one-way delay from `here`). From `here`'s client host, UDP
//! datagrams go at a steady pace to an echo on `here-1` (the same region: direct, the baseline), on `zero-1`
//! (through the relay, no delay) and on `far-1` (through the relay, delayed); each echo is one round trip.

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use tern_sim::matrix::{Matrix, Pair};
use tern_sim::netns::Host;
use tern_sim::{Config, Sim};

use super::this_executable;

/// The echo's UDP port.
const ECHO_PORT: u16 = 9000;
/// A datagram's size: its send time (nanoseconds since the measurement began), padded.
const DATAGRAM: usize = 16;
/// How long to wait for the last echoes after the last datagram left.
const DRAIN: Duration = Duration::from_secs(2);

/// `tern-sim measure`'s options.
#[derive(Debug, Args)]
pub struct MeasureArgs {
    /// The one-way delay of the delayed path, in milliseconds.
    #[arg(long, default_value_t = 45)]
    one_way_ms: u32,
    /// Round trips per path.
    #[arg(long, default_value_t = 1000)]
    samples: usize,
    /// Milliseconds between two datagrams.
    #[arg(long, default_value_t = 2)]
    interval_ms: u64,
}

/// One path's round trips.
struct PathResult {
    name: String,
    configured: Duration,
    /// Sorted.
    rtts: Vec<Duration>,
    lost: usize,
}

impl PathResult {
    /// The `q` quantile (0 to 1) by nearest rank.
    fn quantile(&self, q: f64) -> Duration {
        let rank = ((q * self.rtts.len() as f64).ceil() as usize).clamp(1, self.rtts.len());
        self.rtts[rank - 1]
    }
}

/// Runs the measurement and prints a table.
pub fn run(args: MeasureArgs) -> Result<(), String> {
    if args.samples == 0 {
        return Err("--samples must be at least 1".into());
    }
    let regions = ["here", "zero", "far"].map(String::from);
    let rtt = 2 * args.one_way_ms;
    let pairs = [("here", "zero", 0), ("here", "far", rtt), ("zero", "far", rtt)];
    let rtts: Vec<Pair<u32>> = pairs.iter().map(|&(a, b, value)| Pair { a: a.into(), b: b.into(), value }).collect();
    let matrix = Matrix::new(&regions, &rtts, &[])?;
    let sim = Sim::start(Config { matrix, hosts_per_region: 1, relay: this_executable()?, detached: false })?;
    let interval = Duration::from_millis(args.interval_ms);
    let mut results = Vec::new();
    for (region, name, configured) in [
        ("here", "same region, direct".to_string(), 0),
        ("zero", "through the relay, 0 ms each way".to_string(), 0),
        ("far", format!("through the relay, {} ms each way", args.one_way_ms), rtt),
    ] {
        let (rtts, lost) = round_trips(sim.client("here"), &sim.hosts(region)[0], args.samples, interval)?;
        results.push(PathResult { name, configured: Duration::from_millis(configured.into()), rtts, lost });
    }
    print(&results, &args);
    Ok(())
}

/// Sends `samples` datagrams from `client` to an echo on `target`, one every `interval`: the round trips of
/// those that came back (sorted), and how many did not.
fn round_trips(
    client: &Host,
    target: &Host,
    samples: usize,
    interval: Duration,
) -> Result<(Vec<Duration>, usize), String> {
    let echo_address = SocketAddr::from((target.ip, ECHO_PORT));
    let echo = target.within(|| UdpSocket::bind(echo_address))?.map_err(|e| format!("echo socket: {e}"))?;
    let socket = client.within(|| UdpSocket::bind("0.0.0.0:0"))?.map_err(|e| format!("client socket: {e}"))?;
    let timeout = Some(Duration::from_millis(50));
    echo.set_read_timeout(timeout).and_then(|()| socket.set_read_timeout(timeout)).map_err(|e| e.to_string())?;
    let receiver = socket.try_clone().map_err(|e| e.to_string())?;
    // `sent`: the last datagram left; `done`: the collector stopped waiting, so the echo may stop.
    let (sent, done) = (AtomicBool::new(false), AtomicBool::new(false));
    let base = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut buf = [0u8; 64];
            while !done.load(Ordering::Relaxed) {
                if let Ok((len, from)) = echo.recv_from(&mut buf) {
                    let _ = echo.send_to(&buf[..len], from);
                }
            }
        });
        let collector = scope.spawn(|| {
            let mut rtts = Vec::with_capacity(samples);
            let mut buf = [0u8; 64];
            let mut last_sent: Option<Instant> = None;
            while rtts.len() < samples && last_sent.is_none_or(|at| at.elapsed() < DRAIN) {
                if let Ok(DATAGRAM) = receiver.recv(&mut buf) {
                    let sent = Duration::from_nanos(u64::from_le_bytes(buf[..8].try_into().expect("8 bytes")));
                    rtts.push(base.elapsed() - sent);
                }
                if sent.load(Ordering::Relaxed) {
                    last_sent.get_or_insert_with(Instant::now);
                }
            }
            done.store(true, Ordering::Relaxed);
            rtts
        });
        let sending = (0..samples).try_for_each(|n| {
            let due = base + interval * n as u32;
            std::thread::sleep(due.saturating_duration_since(Instant::now()));
            let mut datagram = [0u8; DATAGRAM];
            datagram[..8].copy_from_slice(&(base.elapsed().as_nanos() as u64).to_le_bytes());
            socket.send_to(&datagram, echo_address).map(drop).map_err(|e| format!("send: {e}"))
        });
        sent.store(true, Ordering::Relaxed);
        let mut rtts = collector.join().map_err(|_| "the collector panicked".to_string())?;
        sending?;
        rtts.sort_unstable();
        let lost = samples - rtts.len();
        Ok((rtts, lost))
    })
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn print(results: &[PathResult], args: &MeasureArgs) {
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    println!(
        "UDP round trips, {} per path, one every {} ms, {DATAGRAM}-byte datagrams; {build} build of the relay",
        args.samples, args.interval_ms
    );
    println!();
    println!("| path | configured RTT | p50 | p99 | max | lost |");
    println!("|---|---|---|---|---|---|");
    for r in results.iter().filter(|r| !r.rtts.is_empty()) {
        let [p50, p99, max] = [0.5, 0.99, 1.0].map(|q| r.quantile(q));
        println!("| {} | {} | {} | {} | {} | {} |", r.name, ms(r.configured), ms(p50), ms(p99), ms(max), r.lost);
    }
    let Some(direct) = results.first().filter(|r| !r.rtts.is_empty()) else { return };
    println!();
    println!("the relay's own added latency per round trip (measured - configured RTT - the direct path's p50):");
    for r in results[1..].iter().filter(|r| !r.rtts.is_empty()) {
        let added = |q: f64| r.quantile(q).saturating_sub(r.configured).saturating_sub(direct.quantile(0.5));
        println!("  {}: p50 {}, p99 {}", r.name, ms(added(0.5)), ms(added(0.99)));
    }
}
