//! The regions of a simulation and what lies between each pair of them: a round-trip time and a loss rate.
//!
//! Default round-trip times are typical public-cloud figures between the four regions Tern's examples use (see
//! `ops/sim/README.md` for where they come from); any pair can be overridden with `A-B=VALUE`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Round-trip times in milliseconds between the regions the simulator knows by default.
pub const DEFAULT_RTTS_MS: [(&str, &str, u32); 6] = [
    ("iad", "fra", 90),
    ("iad", "sin", 220),
    ("iad", "syd", 200),
    ("fra", "sin", 160),
    ("fra", "syd", 280),
    ("sin", "syd", 90),
];

/// Most regions one simulation holds (each region is a /24 of the run's /16).
pub const MAX_REGIONS: usize = 200;
/// Longest round-trip time accepted, in milliseconds.
const MAX_RTT_MS: u32 = 10_000;

/// A value for one pair of regions, written `A-B=VALUE` (the order of A and B does not matter).
#[derive(Clone, Debug, PartialEq)]
pub struct Pair<T> {
    /// One region.
    pub a: String,
    /// The other region.
    pub b: String,
    /// The value for the pair.
    pub value: T,
}

impl<T: FromStr> FromStr for Pair<T> {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not REGION-REGION=VALUE");
        let (regions, value) = text.split_once('=').ok_or_else(bad)?;
        let (a, b) = regions.split_once('-').ok_or_else(bad)?;
        let value = value.trim().parse().map_err(|_| bad())?;
        Ok(Pair { a: check_region(a)?, b: check_region(b)?, value })
    }
}

impl<T: fmt::Display> fmt::Display for Pair<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}={}", self.a, self.b, self.value)
    }
}

/// A region name: 1 to 16 lowercase letters and digits (it becomes part of namespace names).
fn check_region(name: &str) -> Result<String, String> {
    let valid = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit();
    if name.is_empty() || name.len() > 16 || !name.chars().all(valid) {
        return Err(format!("`{name}` is not a region name (1 to 16 lowercase letters and digits)"));
    }
    Ok(name.to_string())
}

/// What one direction between two regions does to a packet.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Link {
    /// The pair's round-trip time; each direction holds a packet for half of it.
    pub rtt: Duration,
    /// The fraction of packets dropped in each direction (0 to 1).
    pub loss: f64,
}

impl Link {
    /// How long a packet is held in one direction.
    pub fn one_way(&self) -> Duration {
        self.rtt / 2
    }
}

/// The regions of a simulation and the link between every two of them.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    regions: Vec<String>,
    /// `links[a * n + b]`, symmetric; the diagonal is unused (a region's hosts talk directly).
    links: Vec<Link>,
}

impl Matrix {
    /// The matrix for `regions`: round-trip times from `rtts_ms`, else [`DEFAULT_RTTS_MS`]; loss from `losses`,
    /// else none. Every pair of distinct regions needs a round-trip time.
    pub fn new(regions: &[String], rtts_ms: &[Pair<u32>], losses: &[Pair<f64>]) -> Result<Matrix, String> {
        if regions.is_empty() || regions.len() > MAX_REGIONS {
            return Err(format!("a simulation has 1 to {MAX_REGIONS} regions"));
        }
        for (i, region) in regions.iter().enumerate() {
            check_region(region)?;
            if regions[..i].contains(region) {
                return Err(format!("region `{region}` is given twice"));
            }
        }
        let n = regions.len();
        let index = |name: &str| {
            regions.iter().position(|r| r == name).ok_or_else(|| format!("`{name}` is not one of the regions"))
        };
        let mut rtt: Vec<Option<u32>> = vec![None; n * n];
        let defaults = DEFAULT_RTTS_MS.iter().map(|&(a, b, ms)| Pair { a: a.to_string(), b: b.to_string(), value: ms });
        for pair in defaults.filter(|p| regions.contains(&p.a) && regions.contains(&p.b)).chain(rtts_ms.iter().cloned())
        {
            let (a, b) = (index(&pair.a)?, index(&pair.b)?);
            if a == b || pair.value > MAX_RTT_MS {
                return Err(format!("`{pair}`: a round trip is between two regions, at most {MAX_RTT_MS} ms"));
            }
            (rtt[a * n + b], rtt[b * n + a]) = (Some(pair.value), Some(pair.value));
        }
        let mut loss = vec![0.0; n * n];
        for pair in losses {
            let (a, b) = (index(&pair.a)?, index(&pair.b)?);
            if a == b || !(0.0..=1.0).contains(&pair.value) {
                return Err(format!("`{pair}`: a loss rate is between two regions, from 0 to 1"));
            }
            (loss[a * n + b], loss[b * n + a]) = (pair.value, pair.value);
        }
        let mut links = Vec::with_capacity(n * n);
        for a in 0..n {
            for b in 0..n {
                let ms = match rtt[a * n + b] {
                    Some(ms) => ms,
                    None if a == b => 0,
                    None => {
                        return Err(format!(
                            "no round-trip time for {}-{}: give one as {0}-{1}=MS",
                            regions[a], regions[b]
                        ));
                    }
                };
                links.push(Link { rtt: Duration::from_millis(ms.into()), loss: loss[a * n + b] });
            }
        }
        Ok(Matrix { regions: regions.to_vec(), links })
    }

    /// The regions, in order (a region's index is its place here).
    pub fn regions(&self) -> &[String] {
        &self.regions
    }

    /// The link from region `a` to region `b` (indices).
    pub fn link(&self, a: usize, b: usize) -> Link {
        self.links[a * self.regions.len() + b]
    }

    /// The link from region `a` to region `b` (names), if both are regions of the matrix.
    pub fn between(&self, a: &str, b: &str) -> Option<Link> {
        let index = |name: &str| self.regions.iter().position(|r| r == name);
        Some(self.link(index(a)?, index(b)?))
    }

    /// Every pair of distinct regions once, with its link.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str, Link)> {
        let n = self.regions.len();
        (0..n).flat_map(move |a| {
            (a + 1..n).map(move |b| (self.regions[a].as_str(), self.regions[b].as_str(), self.link(a, b)))
        })
    }

    /// The round-trip times as `--rtt` values, every pair explicit.
    pub fn rtt_args(&self) -> Vec<String> {
        self.pairs().map(|(a, b, link)| format!("{a}-{b}={}", link.rtt.as_millis())).collect()
    }

    /// The non-zero loss rates as `--loss` values.
    pub fn loss_args(&self) -> Vec<String> {
        self.pairs()
            .filter(|(_, _, link)| link.loss > 0.0)
            .map(|(a, b, link)| format!("{a}-{b}={}", link.loss))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn regions(names: &[&str]) -> Vec<String> {
        names.iter().map(|r| r.to_string()).collect()
    }

    #[test]
    fn known_regions_get_the_default_round_trips_both_ways() {
        let m = Matrix::new(&regions(&["iad", "fra", "sin"]), &[], &[]).unwrap();
        assert_eq!(m.link(0, 1).rtt, Duration::from_millis(90));
        assert_eq!(m.link(1, 0).one_way(), Duration::from_millis(45));
        assert_eq!(m.link(2, 0).rtt, Duration::from_millis(220));
        assert_eq!(m.between("sin", "fra").map(|l| l.rtt), Some(Duration::from_millis(160)));
        assert_eq!(m.between("sin", "syd"), None);
        assert_eq!(m.rtt_args(), ["iad-fra=90", "iad-sin=220", "fra-sin=160"]);
        assert!(m.loss_args().is_empty());
    }

    #[test]
    fn overrides_and_loss_apply_to_both_directions_and_round_trip_through_the_arguments() {
        let rtts = ["fra-iad=75".parse().unwrap(), "iad-lab=3".parse().unwrap(), "fra-lab=80".parse().unwrap()];
        let m = Matrix::new(&regions(&["iad", "fra", "lab"]), &rtts, &["lab-iad=0.25".parse().unwrap()]).unwrap();
        assert_eq!(m.link(0, 1).rtt, Duration::from_millis(75));
        assert_eq!(m.link(2, 0).loss, 0.25);
        assert_eq!(m.link(0, 2).loss, 0.25);
        assert_eq!(m.link(1, 2).loss, 0.0);
        let rtt: Vec<Pair<u32>> = m.rtt_args().iter().map(|a| a.parse().unwrap()).collect();
        let loss: Vec<Pair<f64>> = m.loss_args().iter().map(|a| a.parse().unwrap()).collect();
        assert_eq!(Matrix::new(m.regions(), &rtt, &loss).unwrap(), m);
    }

    #[test]
    fn bad_matrices_say_what_is_wrong() {
        let err = |names: &[&str], rtts: &[&str], losses: &[&str]| {
            let rtts: Vec<Pair<u32>> = rtts.iter().map(|p| p.parse().unwrap()).collect();
            let losses: Vec<Pair<f64>> = losses.iter().map(|p| p.parse().unwrap()).collect();
            Matrix::new(&regions(names), &rtts, &losses).unwrap_err()
        };
        assert!(err(&["iad", "lab"], &[], &[]).contains("no round-trip time for iad-lab"));
        assert!(err(&["iad", "iad"], &[], &[]).contains("twice"));
        assert!(err(&["iad", "fra"], &["iad-ord=10"], &[]).contains("`ord` is not one of the regions"));
        assert!(err(&["iad", "fra"], &[], &["iad-fra=1.5"]).contains("from 0 to 1"));
        assert!(err(&["iad", "fra"], &["iad-iad=1"], &[]).contains("between two regions"));
        assert!("iad=3".parse::<Pair<u32>>().is_err());
        assert!("IAD-fra=3".parse::<Pair<u32>>().unwrap_err().contains("not a region name"));
        assert!("iad-fra=fast".parse::<Pair<u32>>().is_err());
    }
}
