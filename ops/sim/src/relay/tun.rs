//! A TUN device, read and written a whole IP packet at a time through tokio.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;

use tokio::io::unix::AsyncFd;

/// `struct ifreq` as TUNSETIFF reads it: the interface name, then the flags.
#[repr(C)]
struct InterfaceRequest {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _rest: [u8; 22],
}

/// An attached TUN device: packets the kernel routes to it are read here, packets written here enter the kernel
/// as if they arrived on it.
pub struct Tun {
    fd: AsyncFd<File>,
}

impl Tun {
    /// Attaches to the existing TUN device `name` (made with `ip tuntap add NAME mode tun`, no packet information).
    pub fn attach(name: &str) -> io::Result<Tun> {
        let file = OpenOptions::new().read(true).write(true).custom_flags(libc::O_NONBLOCK).open("/dev/net/tun")?;
        let mut request = InterfaceRequest {
            name: [0; libc::IFNAMSIZ],
            flags: (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short,
            _rest: [0; 22],
        };
        if name.is_empty() || name.len() >= libc::IFNAMSIZ {
            return Err(io::Error::new(io::ErrorKind::InvalidInput, format!("`{name}` is not an interface name")));
        }
        request.name[..name.len()].copy_from_slice(name.as_bytes());
        // SAFETY: TUNSETIFF reads an `ifreq` (name and flags) from a valid pointer, for this open descriptor.
        if unsafe { libc::ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut request) } < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: the file owns its descriptor, which stays open and the same until the `AsyncFd` drops it.
        let fd = unsafe { AsyncFd::register(file) }?;
        Ok(Tun { fd })
    }

    /// Reads the next packet into `buf`: its length.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let mut ready = self.fd.readable().await?;
            if let Ok(result) = ready.try_io(|fd| fd.get_ref().read(buf)) {
                return result;
            }
        }
    }

    /// Writes one packet.
    pub async fn send(&self, packet: &[u8]) -> io::Result<()> {
        loop {
            let mut ready = self.fd.writable().await?;
            if let Ok(result) = ready.try_io(|fd| fd.get_ref().write(packet)) {
                return result.map(drop);
            }
        }
    }
}
