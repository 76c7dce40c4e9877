//! A run's addresses: one /16 of 10.0.0.0/8 per run, in it one /24 per region (`10.S.K.0/24` for region index
//! K): hosts at `.1` and up, the region's client at `.200`, the router (the run's core namespace) at `.254`; and
//! `10.S.255.0/30` for the link between the root namespace (`.1`) and the core (`.2`).

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// The second octets a run may take: above the partition test's lab (`10.231.0.0/24`).
pub const SECOND_OCTETS: std::ops::RangeInclusive<u8> = 232..=254;
/// Most hosts a region holds.
pub const MAX_HOSTS: usize = 99;

/// A run's /16: `10.S.0.0/16`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subnet {
    second: u8,
}

impl Subnet {
    /// The subnet `10.second.0.0/16`.
    pub fn new(second: u8) -> Subnet {
        Subnet { second }
    }

    /// Host `i` (from 1) of region `region`.
    pub fn host(&self, region: usize, i: usize) -> Ipv4Addr {
        assert!((1..=MAX_HOSTS).contains(&i), "a region holds hosts 1 to {MAX_HOSTS}");
        self.address(region, i as u8)
    }

    /// The client of region `region`.
    pub fn client(&self, region: usize) -> Ipv4Addr {
        self.address(region, 200)
    }

    /// The router of region `region`: its hosts' default gateway.
    pub fn router(&self, region: usize) -> Ipv4Addr {
        self.address(region, 254)
    }

    fn address(&self, region: usize, last: u8) -> Ipv4Addr {
        let region = u8::try_from(region).ok().filter(|&r| r < 255).expect("a region index below 255");
        Ipv4Addr::new(10, self.second, region, last)
    }

    /// Region `region`'s /24.
    pub fn region_cidr(&self, region: usize) -> String {
        format!("{}/24", self.address(region, 0))
    }

    /// The addresses of the root namespace's end and the core's end of the uplink.
    pub fn uplink(&self) -> (Ipv4Addr, Ipv4Addr) {
        (Ipv4Addr::new(10, self.second, 255, 1), Ipv4Addr::new(10, self.second, 255, 2))
    }

    /// The uplink's /30.
    pub fn uplink_cidr(&self) -> String {
        format!("10.{}.255.0/30", self.second)
    }

    /// The index of the region `address` belongs to, if it is a region's address of this subnet.
    pub fn region_of(&self, address: Ipv4Addr) -> Option<usize> {
        let [ten, second, region, _] = address.octets();
        (ten == 10 && second == self.second && region < 255).then_some(region.into())
    }

    /// Whether this /16 and the IPv4 prefix `cidr` (`a.b.c.d/len` or a bare address) share an address.
    pub fn overlaps(&self, cidr: &str) -> bool {
        let (address, len) = cidr.split_once('/').unwrap_or((cidr, "32"));
        let (Ok(address), Ok(len)) = (address.parse::<Ipv4Addr>(), len.parse::<u32>()) else { return false };
        let common = len.min(16);
        let mask = if common == 0 { 0 } else { u32::MAX << (32 - common) };
        let ours = u32::from(Ipv4Addr::new(10, self.second, 0, 0));
        u32::from(address) & mask == ours & mask
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "10.{}.0.0/16", self.second)
    }
}

impl FromStr for Subnet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let bad = || format!("`{text}` is not a subnet 10.S.0.0/16");
        let address: Ipv4Addr = text.strip_suffix("/16").ok_or_else(bad)?.parse().map_err(|_| bad())?;
        match address.octets() {
            [10, second, 0, 0] => Ok(Subnet { second }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_name_their_region() {
        let subnet: Subnet = "10.240.0.0/16".parse().unwrap();
        assert_eq!(subnet.to_string(), "10.240.0.0/16");
        assert_eq!(subnet.host(2, 1), Ipv4Addr::new(10, 240, 2, 1));
        assert_eq!(subnet.region_of(subnet.client(3)), Some(3));
        assert_eq!(subnet.region_of(subnet.uplink().0), None);
        assert_eq!(subnet.region_of(Ipv4Addr::new(10, 241, 2, 1)), None);
        assert_eq!(subnet.region_cidr(1), "10.240.1.0/24");
        assert!("10.240.1.0/16".parse::<Subnet>().is_err());
    }

    #[test]
    fn overlap_with_routes_of_the_root_namespace() {
        let subnet = Subnet::new(240);
        assert!(subnet.overlaps("10.240.7.0/24"));
        assert!(subnet.overlaps("10.0.0.0/8"));
        assert!(subnet.overlaps("10.240.3.3"));
        assert!(!subnet.overlaps("10.231.0.0/24"));
        assert!(!subnet.overlaps("192.0.2.0/24"));
        assert!(!subnet.overlaps("default"));
    }
}
