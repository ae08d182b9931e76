//! Operating-system helpers: opening client sockets from rotating loopback
//! source addresses, the open-file limit, and the process's own CPU time.

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// Distinct 127.0.0.x source addresses used in turn (IPv4 targets only), so
/// that connection churn never runs out of ephemeral ports.
const SOURCE_ADDRESSES: usize = 64;

/// Starts a non-blocking connection to `target`; `seq` picks the source
/// address. The connection completes when the socket becomes writable.
pub fn connect(target: SocketAddr, seq: usize) -> io::Result<mio::net::TcpStream> {
    // SOCK_NONBLOCK at creation: one fcntl less per connection.
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        Some(Protocol::TCP),
    )?;
    socket.set_tcp_nodelay(true)?;
    if target.is_ipv4() {
        // Defer the port choice to connect(), which only needs the 4-tuple
        // to be unique, instead of bind(), which wants a free port.
        set_bind_address_no_port(&socket)?;
        let source = Ipv4Addr::new(127, 0, 0, 2 + (seq % SOURCE_ADDRESSES) as u8);
        socket.bind(&SockAddr::from(SocketAddr::from((source, 0))))?;
    }
    match socket.connect(&SockAddr::from(target)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(std::net::TcpStream::from(
        socket,
    )))
}

/// Sets `IP_BIND_ADDRESS_NO_PORT` on an IPv4 socket.
fn set_bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: a valid fd, a pointer to a live c_int and its size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Raises RLIMIT_NOFILE so that `sockets` connections (plus a margin) fit,
/// raising the hard limit too when allowed. Returns the resulting soft limit.
pub fn raise_nofile(sockets: usize) -> io::Result<u64> {
    let want = sockets as u64 + 64;
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with a pointer to a live rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return Err(io::Error::last_os_error());
        }
        if lim.rlim_cur >= want {
            return Ok(lim.rlim_cur);
        }
        let mut raised = libc::rlimit {
            rlim_cur: want,
            rlim_max: lim.rlim_max.max(want),
        };
        if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
            // Not allowed to raise the hard limit: go as far as it allows.
            raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        Ok(raised.rlim_cur)
    }
}

/// CPU time (user + system) this process has used so far.
pub fn cpu_time() -> Duration {
    // SAFETY: getrusage with a pointer to a zeroed, live rusage.
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

/// What a process used so far: CPU time summed over its threads (from
/// `/proc/PID/task/*/schedstat`, nanoseconds) and its read and write
/// system calls (`/proc/PID/io` `syscr`, `syscw`). Zeros for a process
/// that is gone or unreadable.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ProcUsage {
    pub cpu_ns: u64,
    pub syscr: u64,
    pub syscw: u64,
}

/// Reads [`ProcUsage`] of `pid`.
pub fn proc_usage(pid: u32) -> ProcUsage {
    let mut u = ProcUsage::default();
    if let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) {
        for task in tasks.flatten().take(4096) {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            u.cpu_ns += stat
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    let io = std::fs::read_to_string(format!("/proc/{pid}/io")).unwrap_or_default();
    for line in io.lines() {
        let mut kv = line.split(':');
        let (Some(k), Some(v)) = (kv.next(), kv.next()) else {
            continue;
        };
        let v = v.trim().parse().unwrap_or(0);
        match k {
            "syscr" => u.syscr = v,
            "syscw" => u.syscw = v,
            _ => {}
        }
    }
    u
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    #[test]
    fn reads_own_usage() {
        let me = std::process::id();
        let a = proc_usage(me);
        let mut x = 0u64;
        for i in 0..2_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        let _ = std::fs::read_to_string("/proc/self/stat");
        let b = proc_usage(me);
        assert!(b.cpu_ns > a.cpu_ns, "{a:?} {b:?}");
        assert!(b.syscr > a.syscr, "{a:?} {b:?}");
        assert_eq!(proc_usage(u32::MAX), ProcUsage::default());
    }

    #[test]
    fn connects_from_rotating_loopback_sources() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let target = listener.local_addr().unwrap();
        for seq in [0, 1, 63, 64] {
            let stream = connect(target, seq).unwrap();
            let (_accepted, peer) = listener.accept().unwrap();
            assert_eq!(
                peer.ip(),
                IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2 + (seq % 64) as u8))
            );
            drop(stream);
        }
    }

    #[test]
    fn nofile_limit_can_be_raised_to_a_modest_level() {
        assert!(raise_nofile(100).unwrap() >= 164);
    }
}
