//! One client connection: read frames, handle the requests one at a time in the order they
//! came, and write the responses back in that order (KAFKA-COMPAT item 5).
//!
//! One at a time is Kafka's own rule (its network processor mutes a connection until the
//! response to its current request is sent), and producers depend on it: with several
//! produce requests in flight, librdkafka and the Java client keep a partition's order
//! only because the broker appends them in the order they were sent. A writer task sends
//! responses while the next request is read and handled; at most [`MAX_IN_FLIGHT`]
//! responses wait for it, so a client that does not read its responses is slowed, not
//! buffered without limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use super::{handlers, Shared};
use crate::peer::link::{read_frames, PEER_MAGIC};
use crate::wire::{self, Request};

/// Requests in flight per connection.
const MAX_IN_FLIGHT: usize = 128;

/// Serves one connection: a peer's (it starts with [`PEER_MAGIC`]) at once, a client's
/// once `serving` is true.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    mut serving: watch::Receiver<bool>,
) {
    tracing::debug!(%peer, "connection opened");
    let (mut reader, mut writer) = tokio::io::split(stream);
    // Another broker or a voter dialling a broker-only node: its links start with
    // PEER_MAGIC, which read as a Kafka frame's length is far over any request limit.
    let mut first = [0u8; 4];
    let idle = Duration::from_millis(shared.cfg.connections_max_idle_ms);
    match tokio::time::timeout(idle, reader.read_exact(&mut first)).await {
        Ok(Ok(_)) => {}
        _ => {
            tracing::debug!(%peer, "connection closed before its first frame");
            return;
        }
    }
    if first == PEER_MAGIC {
        if let Err(reason) = read_frames(reader, shared.peers.clone()).await {
            tracing::debug!(%peer, %reason, "peer connection closed");
        }
        return;
    }
    if serving.wait_for(|s| *s).await.is_err() {
        return; // the broker did not start
    }
    let mut reader = (&first[..]).chain(reader);
    let (responses, mut in_order) = mpsc::channel::<Bytes>(MAX_IN_FLIGHT);
    let write_task = tokio::spawn(async move {
        while let Some(frame) = in_order.recv().await {
            // madsim's stream holds bytes until flushed; flush every response.
            if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                break;
            }
        }
        let _ = writer.shutdown().await;
    });
    let max_bytes = shared.cfg.socket_request_max_bytes;
    loop {
        let frame = match tokio::time::timeout(idle, wire::read_frame(&mut reader, max_bytes)).await
        {
            Err(_) => {
                tracing::debug!(%peer, "closing idle connection (connections.max.idle.ms)");
                break;
            }
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "connection ended");
                break;
            }
            Ok(Ok(Err(e))) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
            Ok(Ok(Ok(None))) => break,
            Ok(Ok(Ok(Some(frame)))) => frame,
        };
        let frame = match wire::decode_request(frame) {
            Ok(Request::ApiVersionsTooNew { correlation_id }) => {
                wire::api_versions_fallback(correlation_id)
            }
            Ok(Request::Decoded {
                header,
                key,
                version,
                body,
            }) => {
                let correlation_id = header.correlation_id;
                // acks=0: no response, by design.
                let Some(resp) =
                    handlers::handle(&shared, peer, &header, key, version, *body).await
                else {
                    continue;
                };
                match wire::encode_response(key, version, correlation_id, &resp) {
                    Ok(frame) => frame,
                    Err(e) => {
                        // The client would wait for ever for this correlation id.
                        tracing::error!(error = %e, "response does not encode; closing the connection");
                        break;
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        if responses.send(frame).await.is_err() {
            break;
        }
    }
    drop(responses);
    let _ = write_task.await;
    tracing::debug!(%peer, "connection closed");
}
