//! A minimal blocking WebSocket server (thread per connection) for the
//! workloads' end-to-end tests: echo, or forward to every other client.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// Starts a server on an ephemeral loopback port; returns its address. The
/// threads end when the test process does.
pub fn start(broadcast: bool) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let peers: Arc<Mutex<Vec<(usize, TcpStream)>>> = Arc::default();
    std::thread::spawn(move || {
        for (id, stream) in listener.incoming().enumerate() {
            let Ok(stream) = stream else { continue };
            let peers = peers.clone();
            std::thread::spawn(move || {
                let _ = serve(id, stream, broadcast, &peers);
                peers.lock().unwrap().retain(|(p, _)| *p != id);
            });
        }
    });
    addr
}

/// One connection: upgrade, then echo or forward every data frame.
fn serve(
    id: usize,
    stream: TcpStream,
    broadcast: bool,
    peers: &Mutex<Vec<(usize, TcpStream)>>,
) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream.try_clone()?;
    let mut line = String::new();
    while reader.read_line(&mut line)? > 2 {
        line.clear();
    }
    // The load generator only checks the status line.
    writer.write_all(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
    )?;
    if broadcast {
        peers.lock().unwrap().push((id, stream.try_clone()?));
    }
    loop {
        let (op, payload) = read_frame(&mut reader)?;
        let mut frame = vec![0x80 | op];
        match payload.len() {
            n @ 0..=125 => frame.push(n as u8),
            n @ 126..=0xFFFF => {
                frame.push(126);
                frame.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                frame.push(127);
                frame.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(&payload);
        if op == 0x8 {
            writer.write_all(&frame)?;
            return Ok(());
        }
        if broadcast {
            for (_, peer) in peers.lock().unwrap().iter_mut().filter(|(p, _)| *p != id) {
                let _ = peer.write_all(&frame);
            }
        } else {
            writer.write_all(&frame)?;
        }
    }
}

/// Reads one masked client frame; returns its opcode and unmasked payload.
fn read_frame(r: &mut impl Read) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    r.read_exact(&mut h)?;
    let len = match h[1] & 0x7F {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b)?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b)?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    assert_eq!(h[1] & 0x80, 0x80, "client frames must be masked");
    let mut key = [0u8; 4];
    r.read_exact(&mut key)?;
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload)?;
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= key[i % 4];
    }
    Ok((h[0] & 0x0F, payload))
}
