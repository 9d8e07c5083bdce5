//! One client connection: read frames, handle the requests in the order they came, and
//! write the responses back in that order (KAFKA-COMPAT item 5).
//!
//! Producers depend on that order: with several produce requests in flight, librdkafka
//! and the Java client keep a partition's order only because the broker appends them in
//! the order they were sent. Produce requests are pipelined: each one's batches go to the
//! node actor before the next request is read (so appends keep the connection's order),
//! but the connection does not wait for its acknowledgement — with acks=all that is a
//! replication round trip — before reading the next request. Its response is written
//! when it comes, still after every earlier response. Other requests are handled one at
//! a time, as Kafka's network processor does. A writer task sends responses while the
//! next request is read and handled; at most [`MAX_IN_FLIGHT`] responses wait for it, so
//! a client that does not read its responses is slowed, not buffered without limit.

use std::future::Future;
use std::io::IoSlice;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use super::handlers::{self, Answer};
use super::{Serving, Shared};
use crate::peer::link::{read_frames, PEER_MAGIC};
use crate::wire::{self, Request};

/// Requests in flight per connection.
const MAX_IN_FLIGHT: usize = 128;

/// A response frame still waiting for the node (a pipelined produce): `None` when there
/// is no response (acks=0), `Err` when it does not encode, which closes the connection
/// (the client would wait for ever for that correlation id).
type LaterFrame = Pin<Box<dyn Future<Output = Option<Result<Bytes, ()>>> + Send>>;

/// A response frame for the writer task, in request order: encoded already, or still
/// waiting for the node.
enum Reply {
    Ready(Bytes),
    /// A frame in pieces, written without joining them (a fetch's record batches).
    Pieces(Vec<Bytes>),
    Later(LaterFrame),
}

/// Encodes a response frame, or says why not (the connection is then closed).
fn encode(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    resp: &ResponseKind,
) -> Result<Bytes, ()> {
    wire::encode_response(key, version, correlation_id, resp).map_err(|e| {
        tracing::error!(error = %e, "response does not encode; closing the connection");
    })
}

/// Serves one connection: a peer's (it starts with [`PEER_MAGIC`]) at once, a client's
/// once `serving` is open.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    serving: Serving,
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
    if !serving.ready().await {
        return; // the broker did not start
    }
    let mut reader = AsyncReadExt::chain(&first[..], reader);
    let (responses, mut in_order) = mpsc::channel::<Reply>(MAX_IN_FLIGHT);
    let write_task = tokio::spawn(async move {
        while let Some(reply) = in_order.recv().await {
            let written = match reply {
                Reply::Ready(frame) => writer.write_all(&frame).await,
                Reply::Pieces(pieces) => write_pieces(&mut writer, &pieces).await,
                Reply::Later(answer) => match answer.await {
                    None => continue, // acks=0
                    Some(Ok(frame)) => writer.write_all(&frame).await,
                    Some(Err(())) => break,
                },
            };
            // madsim's stream holds bytes until flushed; flush every response.
            if written.is_err() || writer.flush().await.is_err() {
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
        let reply = match wire::decode_request(frame) {
            Ok(Request::ApiVersionsTooNew { correlation_id }) => {
                Reply::Ready(wire::api_versions_fallback(correlation_id))
            }
            Ok(Request::Decoded {
                header,
                key,
                version,
                body,
            }) => {
                let correlation_id = header.correlation_id;
                match *body {
                    RequestKind::Produce(req) => {
                        let submitted = handlers::produce::submit(&shared, req).await;
                        if submitted.needs_no_response() {
                            continue; // acks=0: no response, by design.
                        }
                        Reply::Later(Box::pin(async move {
                            let resp = ResponseKind::Produce(submitted.response().await?);
                            Some(encode(key, version, correlation_id, &resp))
                        }))
                    }
                    RequestKind::Fetch(req) => {
                        let (resp, records) = handlers::fetch::handle_in_parts(&shared, req).await;
                        match wire::encode_fetch_response(version, correlation_id, resp, &records) {
                            Ok(pieces) => Reply::Pieces(pieces),
                            Err(e) => {
                                tracing::error!(error = %e, "fetch response does not encode; closing the connection");
                                break;
                            }
                        }
                    }
                    body => {
                        let resp = match handlers::handle(
                            &shared, peer, &header, key, version, body,
                        )
                        .await
                        {
                            Answer::Respond(resp) => resp,
                            Answer::Nothing => continue,
                            Answer::Close => {
                                tracing::debug!(%peer, ?key, "the node is gone; closing the connection");
                                break;
                            }
                        };
                        match encode(key, version, correlation_id, &resp) {
                            Ok(frame) => Reply::Ready(frame),
                            Err(()) => break,
                        }
                    }
                }
            }
            Err(e) => {
                tracing::warn!(%peer, error = %e, "closing connection");
                break;
            }
        };
        if responses.send(reply).await.is_err() {
            break;
        }
    }
    drop(responses);
    let _ = write_task.await;
    tracing::debug!(%peer, "connection closed");
}

/// Writes a frame's pieces with vectored writes: one system call for many batches, and
/// no copy of them in user space.
async fn write_pieces<W: AsyncWrite + Unpin>(
    writer: &mut W,
    pieces: &[Bytes],
) -> std::io::Result<()> {
    let mut buf = Pieces::new(pieces);
    while buf.has_remaining() {
        if writer.write_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// A [`Buf`] over a list of byte pieces, for [`write_pieces`].
struct Pieces<'a> {
    pieces: &'a [Bytes],
    /// Bytes of `pieces[0]` already written.
    offset: usize,
    remaining: usize,
}

impl<'a> Pieces<'a> {
    fn new(pieces: &'a [Bytes]) -> Self {
        let mut buf = Pieces {
            pieces,
            offset: 0,
            remaining: pieces.iter().map(Bytes::len).sum(),
        };
        buf.skip_empty();
        buf
    }

    fn skip_empty(&mut self) {
        while self.pieces.first().is_some_and(|p| p.len() == self.offset) {
            self.pieces = &self.pieces[1..];
            self.offset = 0;
        }
    }
}

impl Buf for Pieces<'_> {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.pieces.first().map_or(&[], |p| &p[self.offset..])
    }

    fn advance(&mut self, mut cnt: usize) {
        assert!(cnt <= self.remaining, "advanced past the end");
        self.remaining -= cnt;
        while cnt > 0 {
            let left = self.pieces[0].len() - self.offset;
            let step = left.min(cnt);
            self.offset += step;
            cnt -= step;
            self.skip_empty();
        }
    }

    fn chunks_vectored<'b>(&'b self, dst: &mut [IoSlice<'b>]) -> usize {
        let mut n = 0;
        for (i, p) in self.pieces.iter().enumerate() {
            if n == dst.len() {
                break;
            }
            let p = if i == 0 { &p[self.offset..] } else { &p[..] };
            if !p.is_empty() {
                dst[n] = IoSlice::new(p);
                n += 1;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::messages::{
        ApiVersionsRequest, DescribeClusterRequest, MetadataRequest, RequestHeader,
    };
    use kafka_protocol::protocol::Encodable;
    use tokio::net::TcpListener;

    /// A request frame: length, header, body.
    fn request_frame(
        key: ApiKey,
        version: i16,
        correlation_id: i32,
        body: &impl Encodable,
    ) -> Vec<u8> {
        let mut buf = bytes::BytesMut::new();
        RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let mut frame = Vec::new();
        frame.put_i32(buf.len() as i32);
        frame.extend_from_slice(&buf);
        frame
    }

    /// With the node actor gone (the broker shutting down), Metadata and DescribeCluster
    /// close the connection, after the answers to the requests before them, instead of
    /// answering with no brokers, which a client could take for an empty cluster.
    #[tokio::test]
    async fn metadata_with_the_node_gone_closes_the_connection() {
        let metadata = request_frame(ApiKey::Metadata, 1, 2, &MetadataRequest::default());
        closes_after_one_answer(metadata).await;
        let describe = request_frame(
            ApiKey::DescribeCluster,
            0,
            2,
            &DescribeClusterRequest::default(),
        );
        closes_after_one_answer(describe).await;
    }

    /// Serves a connection whose node actor is gone; sends ApiVersions, then `request`:
    /// the first is answered, then the connection closes.
    async fn closes_after_one_answer(request: Vec<u8>) {
        let (commands, actor) = mpsc::channel(1);
        drop(actor);
        let (peers, _peer_frames) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            commands,
            cfg: eddy_core::config::BrokerConfig::default(),
            cluster_id: "test".to_string(),
            peers,
        });
        let serving = Serving::default();
        super::super::ServingGate(serving.clone()).open();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (stream, peer) = listener.accept().await.unwrap();
            serve(stream, peer, shared, serving).await;
        });
        let mut client = TcpStream::connect(addr).await.unwrap();
        let mut frames = request_frame(ApiKey::ApiVersions, 0, 1, &ApiVersionsRequest::default());
        frames.extend(request);
        client.write_all(&frames).await.unwrap();

        let mut len = [0u8; 4];
        client.read_exact(&mut len).await.unwrap();
        let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
        client.read_exact(&mut body).await.unwrap();
        assert_eq!(&body[..4], 1i32.to_be_bytes(), "ApiVersions is answered");
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .expect("the connection closes")
            .unwrap();
        assert_eq!(read, 0, "no answer to the second request: {rest:?}");
        server.await.unwrap();
    }

    #[tokio::test]
    async fn pieces_are_written_whole_and_in_order() {
        let pieces: Vec<Bytes> = vec![
            Bytes::from_static(b""),
            Bytes::from_static(b"abc"),
            Bytes::from_static(b""),
            Bytes::from(vec![7u8; 100_000]),
            Bytes::from_static(b"z"),
        ];
        let mut out = Vec::new();
        write_pieces(&mut out, &pieces).await.expect("writes");
        let want: Vec<u8> = pieces.iter().flat_map(|p| p.iter().copied()).collect();
        assert_eq!(out, want);
    }

    #[test]
    fn a_partial_advance_resumes_inside_a_piece() {
        let pieces = [Bytes::from_static(b"ab"), Bytes::from_static(b"cde")];
        let mut buf = Pieces::new(&pieces);
        buf.advance(3);
        assert_eq!(buf.remaining(), 2);
        assert_eq!(buf.chunk(), b"de");
        let mut slices = [IoSlice::new(&[]); 4];
        assert_eq!(buf.chunks_vectored(&mut slices), 1);
        buf.advance(2);
        assert!(!buf.has_remaining());
    }
}
