//! A small RAM file system (tmpfs) mounted for one test, so a test can fill a disk for real. Mounting needs root;
//! each mount point is new (process id and a timestamp), and it is unmounted and removed on drop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

/// A mounted tmpfs, unmounted and removed when dropped.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `bytes` at a fresh directory of the system's temporary directory. Panics, saying why, if
    /// it cannot: mounting needs root (`mount -t tmpfs`).
    pub fn mount(bytes: u64) -> Tmpfs {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).expect("a clock after 1970").as_nanos();
        let path = std::env::temp_dir().join(format!("tern-tmpfs-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("cannot create {}: {e}", path.display()));
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={bytes}"), "tmpfs"])
            .arg(&path)
            .output()
            .expect("run mount");
        if !output.status.success() {
            let _ = std::fs::remove_dir(&path);
            panic!(
                "cannot mount a tmpfs at {} (this test fills a real file system and needs root): {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Tmpfs { path }
    }

    /// The mount point.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes the file `name` until the file system is full (the write fails with `ENOSPC`); returns how many
    /// bytes it holds.
    pub fn fill(&self, name: &str) -> u64 {
        let mut file = std::fs::File::create(self.path.join(name)).expect("create the filler file");
        let chunk = vec![0xa5u8; 4096];
        let mut written = 0u64;
        loop {
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.kind() == std::io::ErrorKind::StorageFull => break,
                Err(e) => panic!("filling {}: {e}", self.path.display()),
            }
        }
        written
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(&self.path).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process that has not exited yet): detach it now, the kernel frees it when unused.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
        let _ = std::fs::remove_dir(&self.path);
    }
}
