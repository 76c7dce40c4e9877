//! A timer with the kernel's precision: a timerfd read through tokio. Tokio's own timers round every deadline up
//! to the next millisecond, which would add up to a millisecond to each direction of every delayed packet.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd};
use std::time::Instant;

use tokio::io::unix::AsyncFd;

/// One timer, armed for one deadline at a time.
pub struct Timer {
    fd: AsyncFd<File>,
}

impl Timer {
    /// A new, disarmed timer on the monotonic clock (the clock [`Instant`] reads).
    pub fn new() -> io::Result<Timer> {
        // SAFETY: timerfd_create takes a clock id and flags and returns a new descriptor (or -1).
        let raw = unsafe { libc::timerfd_create(libc::CLOCK_MONOTONIC, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let file = unsafe { File::from_raw_fd(raw) };
        // SAFETY: the file owns its descriptor, which stays open and the same until the `AsyncFd` drops it.
        let fd = unsafe { AsyncFd::register(file) }?;
        Ok(Timer { fd })
    }

    /// Waits until `due`.
    pub async fn sleep_until(&self, due: Instant) -> io::Result<()> {
        let wait = due.saturating_duration_since(Instant::now());
        if wait.is_zero() {
            return Ok(());
        }
        let value = libc::timespec { tv_sec: wait.as_secs() as libc::time_t, tv_nsec: wait.subsec_nanos().into() };
        let spec = libc::itimerspec { it_interval: libc::timespec { tv_sec: 0, tv_nsec: 0 }, it_value: value };
        // SAFETY: timerfd_settime reads `spec` and may write the old value, which is not asked for (null).
        if unsafe { libc::timerfd_settime(self.fd.as_raw_fd(), 0, &spec, std::ptr::null_mut()) } < 0 {
            return Err(io::Error::last_os_error());
        }
        loop {
            let mut ready = self.fd.readable().await?;
            let mut expirations = [0u8; 8];
            if let Ok(result) = ready.try_io(|fd| fd.get_ref().read(&mut expirations)) {
                return result.map(drop);
            }
        }
    }
}
