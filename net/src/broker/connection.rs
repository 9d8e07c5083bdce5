//! One client connection: read frames, hand each request to its handler in a task of its
//! own (so a long-polling fetch does not hold up the requests behind it), and write the
//! responses back in request order, as Kafka promises (KAFKA-COMPAT item 5).
//!
//! The writer takes one slot per request from a bounded queue, so at most
//! [`MAX_IN_FLIGHT`] requests are outstanding per connection: a client that pipelines
//! faster than the broker answers is slowed, not buffered without limit.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use super::{handlers, Shared};
use crate::wire::{self, Request};

/// Requests in flight per connection.
const MAX_IN_FLIGHT: usize = 128;

pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, shared: Arc<Shared>) {
    tracing::debug!(%peer, "connection opened");
    let (mut reader, mut writer) = tokio::io::split(stream);
    let (slots, mut in_order) = mpsc::channel::<oneshot::Receiver<Option<Bytes>>>(MAX_IN_FLIGHT);
    let write_task = tokio::spawn(async move {
        while let Some(slot) = in_order.recv().await {
            match slot.await {
                Ok(Some(frame)) => {
                    // madsim's stream holds bytes until flushed; flush every response.
                    if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                        break;
                    }
                }
                // acks=0: no response, by design.
                Ok(None) => {}
                // The handler failed to produce a response: the client would wait
                // forever for this correlation id, so close instead.
                Err(_) => break,
            }
        }
        let _ = writer.shutdown().await;
    });
    let idle = Duration::from_millis(shared.cfg.connections_max_idle_ms);
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
        let (tx, rx) = oneshot::channel();
        if slots.send(rx).await.is_err() {
            break;
        }
        match wire::decode_request(frame) {
            Ok(Request::ApiVersionsTooNew { correlation_id }) => {
                let _ = tx.send(Some(wire::api_versions_fallback(correlation_id)));
            }
            Ok(Request::Decoded {
                header,
                key,
                version,
                body,
            }) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    let correlation_id = header.correlation_id;
                    let Some(resp) = handlers::handle(&shared, &header, key, version, *body).await
                    else {
                        let _ = tx.send(None);
                        return;
                    };
                    match wire::encode_response(key, version, correlation_id, &resp) {
                        Ok(frame) => {
                            let _ = tx.send(Some(frame));
                        }
                        Err(e) => {
                            tracing::error!(error = %e, "response does not encode; closing the connection");
                            drop(tx);
                        }
                    }
                });
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                drop(tx);
                break;
            }
        }
    }
    drop(slots);
    let _ = write_task.await;
    tracing::debug!(%peer, "connection closed");
}
