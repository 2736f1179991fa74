//! Faults for the fault tests, made with real processes and real sockets:
//! pausing a process (SIGSTOP/SIGCONT), a UDP relay that can cut an agent's
//! QUIC traffic both ways (a network partition), and a TCP relay that can
//! hold a database's traffic (a stalled database).

#![allow(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test support: a broken relay fails the test"
)]

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Sends `signal` (`STOP`, `CONT`, ...) to process `pid`.
pub fn signal(pid: u32, signal: &str) {
    let status = std::process::Command::new("kill")
        .args([format!("-{signal}"), pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal} {pid} failed");
}

/// How long a relay's threads wait on a socket before looking at their
/// flags again.
const POLL: Duration = Duration::from_millis(50);

/// Relays UDP datagrams between one client and `target`; while cut, every
/// datagram either way is dropped, as a partition would.
pub struct UdpRelay {
    /// Where the client sends to, in place of `target`.
    pub address: String,
    cut: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl UdpRelay {
    pub fn start(target: &str) -> Self {
        let front = UdpSocket::bind("127.0.0.1:0").unwrap();
        let back = UdpSocket::bind("127.0.0.1:0").unwrap();
        back.connect(target).unwrap();
        front.set_read_timeout(Some(POLL)).unwrap();
        back.set_read_timeout(Some(POLL)).unwrap();
        let address = front.local_addr().unwrap().to_string();
        let (cut, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let (front2, back2) = (front.try_clone().unwrap(), back.try_clone().unwrap());
        let (cut2, stop2, client2) = (cut.clone(), stop.clone(), client.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0_u8; 65_536];
            while !stop2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = front2.recv_from(&mut buffer) {
                    *client2.lock().unwrap() = Some(from);
                    if !cut2.load(Ordering::Relaxed) {
                        let _ = back2.send(&buffer[..n]);
                    }
                }
            }
        });
        let (cut3, stop3) = (cut.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buffer = vec![0_u8; 65_536];
            while !stop3.load(Ordering::Relaxed) {
                if let Ok(n) = back.recv(&mut buffer) {
                    let to = *client.lock().unwrap();
                    if let Some(to) = to.filter(|_| !cut3.load(Ordering::Relaxed)) {
                        let _ = front.send_to(&buffer[..n], to);
                    }
                }
            }
        });
        Self { address, cut, stop }
    }

    /// Drops (`true`) or relays (`false`) every datagram from now on.
    pub fn cut(&self, cut: bool) {
        self.cut.store(cut, Ordering::Relaxed);
    }
}

impl Drop for UdpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Relays TCP connections to `target`; while held, bytes wait in the relay
/// (nothing is lost, nothing arrives), as with a database that stalls.
pub struct TcpRelay {
    pub address: SocketAddr,
    held: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl TcpRelay {
    pub fn start(target: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let (held, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (held2, stop2) = (held.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stop2.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((client, _)) => {
                        let server = TcpStream::connect(target).unwrap();
                        for (from, to) in [
                            (client.try_clone().unwrap(), server.try_clone().unwrap()),
                            (server, client),
                        ] {
                            let (held, stop) = (held2.clone(), stop2.clone());
                            std::thread::spawn(move || pump(from, to, &held, &stop));
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => std::thread::sleep(POLL),
                    Err(e) => panic!("relay accept: {e}"),
                }
            }
        });
        Self { address, held, stop }
    }

    /// Holds (`true`) or passes (`false`) every byte from now on.
    pub fn hold(&self, held: bool) {
        self.held.store(held, Ordering::Relaxed);
    }
}

/// Copies `from` to `to` until either closes, waiting while `held`.
fn pump(mut from: TcpStream, mut to: TcpStream, held: &AtomicBool, stop: &AtomicBool) {
    from.set_read_timeout(Some(POLL)).unwrap();
    let mut buffer = vec![0_u8; 65_536];
    while !stop.load(Ordering::Relaxed) {
        if held.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            continue;
        }
        match from.read(&mut buffer) {
            Ok(0) => break,
            Ok(n) => {
                // Bytes read just as the hold began still wait for it.
                while held.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(POLL);
                }
                if to.write_all(&buffer[..n]).is_err() {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Both);
}

impl Drop for TcpRelay {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}
