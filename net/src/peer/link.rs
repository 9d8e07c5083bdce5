//! Connections between brokers and controllers: one outbound TCP connection per peer,
//! kept up by a task of its own, and a listener that hands every inbound frame to the
//! node's actor.
//!
//! Every connection a node dials starts with [`PEER_MAGIC`] and a `Hello` frame saying
//! where the dialler can be reached. The magic lets a broker-only node take peer
//! connections on its client listener (read as a Kafka frame length it would be over a
//! gigabyte, which no Kafka client sends); the `Hello` lets the nodes it dials learn its
//! address, since no configuration names it.
//!
//! Delivery is best effort, which is all the core asks of a network (the simulator drops,
//! delays and duplicates its messages): a frame for a peer whose queue is full, or whose
//! connection is down, is dropped, and the core's own timeouts resend what matters. So a
//! slow or dead peer costs a bounded queue, never the sender's progress. Every write has
//! a timeout, and a connection that fails is closed and redialled after a backoff.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use eddy_core::types::NodeId;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::codec::{self, PeerFrame};

/// Frames waiting per peer; past this, new ones are dropped.
const QUEUE_FRAMES: usize = 1024;
/// How long one frame may take to write before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// How long to wait before dialling a peer again.
const REDIAL_BACKOFF: Duration = Duration::from_millis(200);
/// The largest frame a peer may send: a fetch response carries at most
/// `replica.fetch.max.bytes` of batches, far below this.
pub const MAX_FRAME_BYTES: u32 = 128 * 1024 * 1024;

/// The first four bytes on every peer connection: "EDY" and the connection format's
/// version.
pub const PEER_MAGIC: [u8; 4] = *b"EDY\x01";

/// The sending side: one queue and one connection task per peer.
#[derive(Debug)]
pub struct PeerLinks {
    me: NodeId,
    /// The `Hello` frame every connection starts with.
    hello: Bytes,
    queues: BTreeMap<NodeId, mpsc::Sender<Bytes>>,
}

impl PeerLinks {
    /// Starts a connection task for each peer (`id` → `host:port`); `me_addr` is where
    /// the peers reach this node.
    pub fn start(me: NodeId, me_addr: &str, peers: &BTreeMap<NodeId, String>) -> PeerLinks {
        let hello = codec::encode(
            me,
            &PeerFrame::Hello {
                address: me_addr.to_string(),
            },
        );
        let mut links = PeerLinks {
            me,
            hello,
            queues: BTreeMap::new(),
        };
        for (&id, addr) in peers {
            links.add(id, addr);
        }
        links
    }

    /// Starts a connection to `id` at `addr` unless there is one; `true` if it is new.
    pub fn add(&mut self, id: NodeId, addr: &str) -> bool {
        if id == self.me || self.queues.contains_key(&id) {
            return false;
        }
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        tokio::spawn(keep_connected(id, addr.to_string(), self.hello.clone(), rx));
        self.queues.insert(id, tx);
        true
    }

    pub fn knows(&self, id: NodeId) -> bool {
        self.queues.contains_key(&id)
    }

    /// Queues `frame` for `to`; `false` if it was dropped (unknown peer, or its queue is
    /// full).
    pub fn send(&self, to: NodeId, frame: &PeerFrame) -> bool {
        let Some(queue) = self.queues.get(&to) else {
            return false;
        };
        queue.try_send(codec::encode(self.me, frame)).is_ok()
    }
}

async fn keep_connected(
    peer: NodeId,
    addr: String,
    hello: Bytes,
    mut frames: mpsc::Receiver<Bytes>,
) {
    loop {
        let mut stream = match TcpStream::connect(&addr).await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(peer = peer.0, %addr, error = %e, "peer unreachable; redialling");
                // Frames queued while the peer is down are stale by the time it is back.
                while frames.try_recv().is_ok() {}
                tokio::time::sleep(REDIAL_BACKOFF).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tracing::debug!(peer = peer.0, %addr, "connected to peer");
        let greeted = tokio::time::timeout(WRITE_TIMEOUT, async {
            stream.write_all(&PEER_MAGIC).await?;
            stream.write_all(&hello).await?;
            stream.flush().await
        })
        .await;
        if !matches!(greeted, Ok(Ok(()))) {
            tokio::time::sleep(REDIAL_BACKOFF).await;
            continue;
        }
        loop {
            let Some(frame) = frames.recv().await else {
                return; // the node is shutting down
            };
            let written = tokio::time::timeout(WRITE_TIMEOUT, async {
                stream.write_all(&frame).await?;
                stream.flush().await
            })
            .await;
            if !matches!(written, Ok(Ok(()))) {
                tracing::debug!(peer = peer.0, %addr, "peer connection lost; redialling");
                break;
            }
        }
        tokio::time::sleep(REDIAL_BACKOFF).await;
    }
}

/// Accepts peer connections and sends every frame read from them, with its sender, to
/// `deliver`. A connection sending a frame that does not decode, or one over
/// [`MAX_FRAME_BYTES`], is closed.
pub async fn accept_peers(listener: TcpListener, deliver: mpsc::Sender<(NodeId, PeerFrame)>) {
    loop {
        let Ok((stream, addr)) = listener.accept().await else {
            tokio::time::sleep(REDIAL_BACKOFF).await;
            continue;
        };
        let deliver = deliver.clone();
        tokio::spawn(async move {
            let mut stream = stream;
            let mut magic = [0u8; 4];
            let read = tokio::time::timeout(WRITE_TIMEOUT, stream.read_exact(&mut magic)).await;
            if !matches!(read, Ok(Ok(_))) || magic != PEER_MAGIC {
                tracing::debug!(%addr, "not a peer connection; closed");
                return;
            }
            if let Err(reason) = read_frames(stream, deliver).await {
                tracing::debug!(%addr, %reason, "peer connection closed");
            }
        });
    }
}

/// Reads frames from a peer connection whose [`PEER_MAGIC`] was read, and sends each,
/// with its sender, to `deliver`, until the connection ends or sends a frame that does
/// not decode.
pub async fn read_frames(
    mut stream: impl AsyncRead + Unpin,
    deliver: mpsc::Sender<(NodeId, PeerFrame)>,
) -> Result<(), String> {
    loop {
        let mut len = [0u8; 4];
        match stream.read_exact(&mut len).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.to_string()),
        }
        let len = u32::from_be_bytes(len);
        if len > MAX_FRAME_BYTES {
            return Err(format!("frame of {len} bytes is over {MAX_FRAME_BYTES}"));
        }
        let mut body = vec![0u8; len as usize];
        stream
            .read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        let (from, frame) = codec::decode(&body).map_err(|e| e.to_string())?;
        if deliver.send((from, frame)).await.is_err() {
            return Ok(()); // the node is shutting down
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use eddy_core::quorum::{RaftMessage, Term};

    fn heartbeat(term: u64) -> PeerFrame {
        PeerFrame::Raft(RaftMessage::HeartbeatResponse { term: Term(term) })
    }

    fn hello(address: &str) -> PeerFrame {
        PeerFrame::Hello {
            address: address.into(),
        }
    }

    /// The next frame that is not a `Hello`.
    async fn next_frame(rx: &mut mpsc::Receiver<(NodeId, PeerFrame)>) -> (NodeId, PeerFrame) {
        loop {
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .expect("a frame within 5 s")
                .expect("the listener runs");
            if !matches!(got.1, PeerFrame::Hello { .. }) {
                return got;
            }
        }
    }

    #[tokio::test]
    async fn frames_reach_the_peer_and_links_survive_its_restart() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let (tx, mut rx) = mpsc::channel(16);
        let server = tokio::spawn(accept_peers(listener, tx));
        let mut links = PeerLinks::start(
            NodeId(1),
            "n1:9092",
            &BTreeMap::from([(NodeId(2), addr.clone())]),
        );
        assert!(
            !links.send(NodeId(9), &heartbeat(1)),
            "unknown peers are not queued"
        );
        assert!(links.send(NodeId(2), &heartbeat(1)));
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap();
        assert_eq!(
            got,
            Some((NodeId(1), hello("n1:9092"))),
            "says where it is first"
        );
        assert_eq!(next_frame(&mut rx).await, (NodeId(1), heartbeat(1)));
        assert!(!links.add(NodeId(2), &addr), "already linked");
        assert!(!links.add(NodeId(1), &addr), "not to itself");
        assert!(links.knows(NodeId(2)) && !links.knows(NodeId(9)));

        // The peer goes away (its listener and, once its node stops taking frames, its
        // connections) and comes back on the same address: frames flow again.
        server.abort();
        let _ = server.await;
        drop(rx);
        let listener = loop {
            match TcpListener::bind(&addr).await {
                Ok(l) => break l,
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        };
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(accept_peers(listener, tx));
        let got = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                links.send(NodeId(2), &heartbeat(2));
                match tokio::time::timeout(Duration::from_millis(300), rx.recv()).await {
                    Ok(Some((_, PeerFrame::Hello { .. }))) => continue,
                    Ok(Some(frame)) => break frame,
                    _ => continue,
                }
            }
        })
        .await
        .expect("reconnected");
        assert_eq!(got, (NodeId(1), heartbeat(2)));
    }

    #[tokio::test]
    async fn a_garbage_frame_closes_only_its_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        tokio::spawn(accept_peers(listener, tx));
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(&[0, 0, 0, 3, 9, 9, 9]).await.unwrap();
        let mut buf = [0u8; 1];
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "closed: no magic");
        // The magic, then a frame that does not decode.
        let mut bad = TcpStream::connect(addr).await.unwrap();
        bad.write_all(&PEER_MAGIC).await.unwrap();
        bad.write_all(&[0, 0, 0, 3, 9, 9, 9]).await.unwrap();
        let closed = tokio::time::timeout(Duration::from_secs(5), bad.read(&mut buf))
            .await
            .unwrap();
        assert!(matches!(closed, Ok(0) | Err(_)), "closed: garbage frame");
        let mut links = PeerLinks::start(NodeId(3), "n3:9092", &BTreeMap::new());
        assert!(links.add(NodeId(4), &addr.to_string()), "learnt later");
        links.send(NodeId(4), &heartbeat(7));
        assert_eq!(next_frame(&mut rx).await, (NodeId(3), heartbeat(7)));
    }
}
