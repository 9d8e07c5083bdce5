//! One TCP connection to one broker, with requests pipelined on it.
//!
//! A request is encoded and written under the writer's lock, and a `Pending` entry for
//! it is queued in the same critical section, so the queue holds requests in the order
//! they went on the wire. Kafka answers a connection's requests in that order
//! (KAFKA-COMPAT item 5), so a reader task pops the queue's front for each response
//! frame and checks that the correlation ids agree; a mismatch means the stream is out
//! of step and the connection is closed, failing everything still pending on it.
//!
//! When the connection opens, ApiVersions (v3, falling back to the version the broker
//! names, KIP-511) learns the broker's ranges; every later request is sent at the
//! highest version both sides speak (`versions.rs`).

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::error::{ClientError, Result};
use crate::versions::{self, api_name};

/// The largest response frame accepted: a fetch answer is bounded by `fetch.max.bytes`
/// (50 MiB by default), and anything far beyond that is a corrupt length.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// What the caller waits on: the response body after its header, or why it never came.
type Reply = oneshot::Sender<Result<Bytes>>;

struct Pending {
    correlation_id: i32,
    response_header_version: i16,
    reply: Reply,
}

struct Inflight {
    /// The broker, for the errors of calls that fail with the connection.
    broker: String,
    queue: VecDeque<Pending>,
    /// Why the connection is closed, once it is; new requests fail at once.
    closed: Option<String>,
    /// Wakes the reader task to stop when the connection closes, so a dropped or failed
    /// connection releases its socket at once rather than when the broker hangs up.
    stop: Arc<tokio::sync::Notify>,
}

struct Writer {
    half: WriteHalf<TcpStream>,
    next_correlation_id: i32,
}

/// A connection to one broker. Cheap to share: calls from many tasks pipeline on it.
pub struct Connection {
    /// "node 2 (127.0.0.1:9093)", for messages.
    broker: String,
    writer: tokio::sync::Mutex<Writer>,
    inflight: Arc<Mutex<Inflight>>,
    /// The broker's (min, max) per API key.
    versions: BTreeMap<i16, (i16, i16)>,
    client_id: String,
    request_timeout: Duration,
}

impl Connection {
    /// Connects to `addr` and negotiates versions; `broker` names it in errors.
    pub(crate) async fn open(
        addr: &str,
        broker: String,
        client_id: &str,
        request_timeout: Duration,
    ) -> Result<Connection> {
        let stream = tokio::time::timeout(request_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| ClientError::Connect {
                broker: broker.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"),
            })?
            .map_err(|source| ClientError::Connect {
                broker: broker.clone(),
                source,
            })?;
        let _ = stream.set_nodelay(true);
        let (read, write) = tokio::io::split(stream);
        let inflight = Arc::new(Mutex::new(Inflight {
            broker: broker.clone(),
            queue: VecDeque::new(),
            closed: None,
            stop: Arc::new(tokio::sync::Notify::new()),
        }));
        tokio::spawn(read_loop(read, inflight.clone(), broker.clone()));
        let mut conn = Connection {
            broker,
            writer: tokio::sync::Mutex::new(Writer {
                half: write,
                next_correlation_id: 0,
            }),
            inflight,
            versions: BTreeMap::new(),
            client_id: client_id.to_string(),
            request_timeout,
        };
        conn.versions = conn.negotiate().await?;
        Ok(conn)
    }

    /// The broker this connection goes to, as errors name it.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// Whether the connection has failed (the pool then opens a new one).
    pub(crate) fn is_closed(&self) -> bool {
        self.inflight
            .lock()
            .expect("inflight lock")
            .closed
            .is_some()
    }

    /// Closes the connection: pending calls fail, the reader stops.
    pub(crate) async fn close(&self) {
        fail_all(&self.inflight, "closed by the client".to_string());
        let _ = self.writer.lock().await.half.shutdown().await;
    }

    async fn negotiate(&self) -> Result<BTreeMap<i16, (i16, i16)>> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("eddy-client"))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let mut version = 3;
        for _ in 0..2 {
            let body = self
                .send_raw(ApiKey::ApiVersions, version, 0, &request)
                .await?
                .expect("ApiVersions always has a response");
            let body = self.await_reply(ApiKey::ApiVersions, body).await?;
            // A broker that does not know our version answers in v0 format (KIP-511).
            let resp = ApiVersionsResponse::decode(&mut body.clone(), version)
                .or_else(|_| ApiVersionsResponse::decode(&mut body.clone(), 0))
                .map_err(|e| self.protocol_error(ApiKey::ApiVersions, e))?;
            let ranges: BTreeMap<i16, (i16, i16)> = resp
                .api_keys
                .iter()
                .map(|k| (k.api_key, (k.min_version, k.max_version)))
                .collect();
            if resp.error_code == 35 {
                let (_, max) = ranges
                    .get(&(ApiKey::ApiVersions as i16))
                    .copied()
                    .unwrap_or((0, 0));
                version = max.min(version - 1).max(0);
                continue;
            }
            if resp.error_code != 0 {
                return Err(ClientError::Broker {
                    broker: self.broker.clone(),
                    api: "ApiVersions",
                    code: crate::error::KafkaCode(resp.error_code),
                    message: None,
                });
            }
            return Ok(ranges);
        }
        Err(ClientError::Protocol {
            broker: self.broker.clone(),
            api: "ApiVersions",
            reason: "the broker refused every ApiVersions version offered".to_string(),
        })
    }

    /// The version of `key` to send: the highest both sides speak.
    pub fn version(&self, key: ApiKey) -> Result<i16> {
        let (cmin, cmax, name) = versions::client_range(key);
        let broker = self.versions.get(&(key as i16)).copied();
        broker.and_then(|b| versions::pick((cmin, cmax), b)).ok_or(
            ClientError::UnsupportedVersion {
                broker: self.broker.clone(),
                api: name,
                broker_min: broker.map_or(-1, |b| b.0),
                broker_max: broker.map_or(-1, |b| b.1),
                client_min: cmin,
                client_max: cmax,
            },
        )
    }

    /// Sends `request` at the negotiated version and waits for its response.
    pub async fn call<R: Request>(&self, request: &R) -> Result<R::Response> {
        let key = ApiKey::try_from(R::KEY).expect("a known API key");
        let version = self.version(key)?;
        self.call_at(request, version).await
    }

    /// Sends `request` at `version` and waits for its response.
    pub async fn call_at<R: Request>(&self, request: &R, version: i16) -> Result<R::Response> {
        let key = ApiKey::try_from(R::KEY).expect("a known API key");
        let reply = self
            .send_raw(key, version, R::Response::header_version(version), request)
            .await?
            .expect("a reply is expected");
        let mut body = self.await_reply(key, reply).await?;
        R::Response::decode(&mut body, version).map_err(|e| self.protocol_error(key, e))
    }

    /// Writes `request` (at the negotiated version) now and returns a future of its
    /// response. Requests written this way go out in the order of the calls, so a
    /// caller that needs order (the producer, with several batches of a partition in
    /// flight) awaits this before writing the next and awaits the responses elsewhere.
    pub(crate) async fn send_request<R>(
        self: &Arc<Self>,
        request: &R,
    ) -> Result<impl std::future::Future<Output = Result<R::Response>> + Send + 'static>
    where
        R: Request,
        R::Response: Send + 'static,
    {
        let key = ApiKey::try_from(R::KEY).expect("a known API key");
        let version = self.version(key)?;
        let reply = self
            .send_raw(key, version, R::Response::header_version(version), request)
            .await?
            .expect("a reply is expected");
        let conn = self.clone();
        Ok(async move {
            let mut body = conn.await_reply(key, reply).await?;
            R::Response::decode(&mut body, version).map_err(|e| conn.protocol_error(key, e))
        })
    }

    /// Sends a request that gets no response (Produce with acks=0).
    pub(crate) async fn send_oneway<R: Request>(&self, request: &R, version: i16) -> Result<()> {
        let key = ApiKey::try_from(R::KEY).expect("a known API key");
        let none = self.send_raw_inner(key, version, None, request).await?;
        debug_assert!(none.is_none());
        Ok(())
    }

    async fn send_raw<R: Encodable>(
        &self,
        key: ApiKey,
        version: i16,
        response_header_version: i16,
        request: &R,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes>>>> {
        self.send_raw_inner(key, version, Some(response_header_version), request)
            .await
    }

    async fn send_raw_inner<R: Encodable>(
        &self,
        key: ApiKey,
        version: i16,
        response_header_version: Option<i16>,
        request: &R,
    ) -> Result<Option<oneshot::Receiver<Result<Bytes>>>> {
        let mut writer = self.writer.lock().await;
        let correlation_id = writer.next_correlation_id;
        writer.next_correlation_id = writer.next_correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_string(self.client_id.clone())));
        let mut frame = BytesMut::new();
        frame.put_i32(0); // length, patched below
        header
            .encode(&mut frame, key.request_header_version(version))
            .and_then(|()| request.encode(&mut frame, version))
            .map_err(|e| ClientError::Protocol {
                broker: self.broker.clone(),
                api: api_name(key),
                reason: format!("the request cannot be encoded at v{version}: {e}"),
            })?;
        let len = i32::try_from(frame.len() - 4).expect("a request under 2 GiB");
        frame[..4].copy_from_slice(&len.to_be_bytes());

        let receiver = {
            let mut inflight = self.inflight.lock().expect("inflight lock");
            if let Some(reason) = &inflight.closed {
                return Err(ClientError::Connection {
                    broker: self.broker.clone(),
                    reason: reason.clone(),
                });
            }
            response_header_version.map(|response_header_version| {
                let (reply, receiver) = oneshot::channel();
                inflight.queue.push_back(Pending {
                    correlation_id,
                    response_header_version,
                    reply,
                });
                receiver
            })
        };
        // madsim's stream holds bytes until flushed: flush every request.
        let written = async {
            writer.half.write_all(&frame).await?;
            writer.half.flush().await
        };
        if let Err(e) = written.await {
            let reason = format!("writing a request failed: {e}");
            fail_all(&self.inflight, reason.clone());
            return Err(ClientError::Connection {
                broker: self.broker.clone(),
                reason,
            });
        }
        Ok(receiver)
    }

    async fn await_reply(
        &self,
        key: ApiKey,
        reply: oneshot::Receiver<Result<Bytes>>,
    ) -> Result<Bytes> {
        match tokio::time::timeout(self.request_timeout, reply).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(ClientError::Connection {
                broker: self.broker.clone(),
                reason: "the connection closed".to_string(),
            }),
            Err(_) => {
                // The stream may be stalled (a partition stalls rather than fails a
                // connection): give it up so the next call opens a fresh one.
                fail_all(&self.inflight, "a request timed out".to_string());
                Err(ClientError::Timeout {
                    broker: self.broker.clone(),
                    api: api_name(key),
                    timeout_ms: self.request_timeout.as_millis() as u64,
                })
            }
        }
    }

    fn protocol_error(&self, key: ApiKey, e: impl std::fmt::Display) -> ClientError {
        ClientError::Protocol {
            broker: self.broker.clone(),
            api: api_name(key),
            reason: e.to_string(),
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        // Stops the reader task (it sees the closed flag after its next frame or EOF)
        // and fails what is still pending.
        fail_all(&self.inflight, "the connection was dropped".to_string());
    }
}

fn fail_all(inflight: &Mutex<Inflight>, reason: String) {
    let mut inflight = inflight.lock().expect("inflight lock");
    if inflight.closed.is_none() {
        inflight.closed = Some(reason.clone());
        inflight.stop.notify_one();
    }
    let broker = inflight.broker.clone();
    for pending in inflight.queue.drain(..) {
        let _ = pending.reply.send(Err(ClientError::Connection {
            broker: broker.clone(),
            reason: reason.clone(),
        }));
    }
}

/// Reads one response frame's body.
async fn read_frame(read: &mut ReadHalf<TcpStream>) -> std::result::Result<Vec<u8>, String> {
    let mut len = [0u8; 4];
    read.read_exact(&mut len)
        .await
        .map_err(|e| format!("reading a response failed: {e}"))?;
    let len = i32::from_be_bytes(len);
    let len = usize::try_from(len)
        .map_err(|_| format!("a response frame has a negative length {len}"))?;
    if !(4..=MAX_RESPONSE_BYTES).contains(&len) {
        return Err(format!("a response frame of {len} bytes is out of bounds"));
    }
    let mut body = vec![0u8; len];
    read.read_exact(&mut body)
        .await
        .map_err(|e| format!("reading a response failed: {e}"))?;
    Ok(body)
}

/// Reads response frames and hands each to the request at the front of the queue.
async fn read_loop(mut read: ReadHalf<TcpStream>, inflight: Arc<Mutex<Inflight>>, broker: String) {
    let stop = inflight.lock().expect("inflight lock").stop.clone();
    let reason = loop {
        let frame = tokio::select! {
            biased;
            _ = stop.notified() => return,
            frame = read_frame(&mut read) => frame,
        };
        let body = match frame {
            Ok(body) => body,
            Err(reason) => break reason,
        };
        let mut body = Bytes::from(body);
        let pending = {
            let mut inflight = inflight.lock().expect("inflight lock");
            if inflight.closed.is_some() {
                return;
            }
            inflight.queue.pop_front()
        };
        let Some(pending) = pending else {
            break "the broker sent a response nobody asked for".to_string();
        };
        let correlation_id = (&body[..4]).get_i32();
        if correlation_id != pending.correlation_id {
            let _ = pending.reply.send(Err(ClientError::Connection {
                broker: broker.clone(),
                reason: "responses arrived out of order".to_string(),
            }));
            break format!(
                "response correlation id {correlation_id} answers no request in order (expected {})",
                pending.correlation_id
            );
        }
        let header = kafka_protocol::messages::ResponseHeader::decode(
            &mut body,
            pending.response_header_version,
        );
        let _ = pending.reply.send(match header {
            Ok(_) => Ok(body),
            Err(e) => Err(ClientError::Connection {
                broker: broker.clone(),
                reason: format!("a response header cannot be read: {e}"),
            }),
        });
    };
    tracing::debug!(%broker, %reason, "connection closed");
    fail_all(&inflight, reason);
}

/// The two halves of a fake broker in tests: read a request's key, version and
/// correlation id (or its whole header and body); answer it with a framed response.
#[cfg(test)]
pub(crate) mod fake_broker {
    use bytes::{BufMut, Bytes, BytesMut};
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use kafka_protocol::messages::{ApiKey, ApiVersionsResponse, RequestHeader, ResponseHeader};
    use kafka_protocol::protocol::{Decodable, Encodable};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    /// The next request's (api key, version, correlation id); `None` once the client
    /// hung up.
    pub(crate) async fn read_request(s: &mut TcpStream) -> Option<(i16, i16, i32)> {
        let (header, _) = read_request_body(s).await?;
        Some((
            header.request_api_key,
            header.request_api_version,
            header.correlation_id,
        ))
    }

    /// The next request's header and the bytes of its body (decode them with the
    /// request's `Decodable` at the header's version); `None` once the client hung up.
    pub(crate) async fn read_request_body(s: &mut TcpStream) -> Option<(RequestHeader, Bytes)> {
        let mut len = [0u8; 4];
        s.read_exact(&mut len).await.ok()?;
        let mut frame = vec![0u8; i32::from_be_bytes(len) as usize];
        s.read_exact(&mut frame).await.unwrap();
        let key = i16::from_be_bytes([frame[0], frame[1]]);
        let version = i16::from_be_bytes([frame[2], frame[3]]);
        let header_version = ApiKey::try_from(key)
            .unwrap()
            .request_header_version(version);
        let mut b = Bytes::from(frame);
        let header = RequestHeader::decode(&mut b, header_version).unwrap();
        Some((header, b))
    }

    /// An ApiVersions answer offering each API from version 0 to the version named.
    pub(crate) fn api_versions(max_versions: &[(ApiKey, i16)]) -> ApiVersionsResponse {
        ApiVersionsResponse::default().with_api_keys(
            max_versions
                .iter()
                .map(|&(key, max)| {
                    ApiVersion::default()
                        .with_api_key(key as i16)
                        .with_min_version(0)
                        .with_max_version(max)
                })
                .collect(),
        )
    }

    /// Writes `resp` at `version` under a response header of `header_version`.
    pub(crate) async fn answer(
        s: &mut TcpStream,
        correlation_id: i32,
        header_version: i16,
        version: i16,
        resp: &impl Encodable,
    ) {
        let mut body = BytesMut::new();
        ResponseHeader::default()
            .with_correlation_id(correlation_id)
            .encode(&mut body, header_version)
            .unwrap();
        resp.encode(&mut body, version).unwrap();
        let mut frame = BytesMut::new();
        frame.put_i32(body.len() as i32);
        frame.put_slice(&body);
        s.write_all(&frame).await.unwrap();
    }
}

#[cfg(test)]
mod tests {
    use super::fake_broker::{answer, read_request};
    use super::*;
    use kafka_protocol::messages::api_versions_response::ApiVersion;
    use tokio::net::TcpListener;

    fn range(key: ApiKey, min: i16, max: i16) -> ApiVersion {
        ApiVersion::default()
            .with_api_key(key as i16)
            .with_min_version(min)
            .with_max_version(max)
    }

    /// KIP-511: a broker that does not know ApiVersions v3 answers in v0 format with
    /// UNSUPPORTED_VERSION and its range; the client asks again at a version it names,
    /// then sends each API at the highest version both sides speak.
    #[tokio::test]
    async fn api_versions_falls_back_to_the_brokers_version_and_negotiates_each_api() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (key, version, cid) = read_request(&mut s).await.unwrap();
            assert_eq!((key, version), (ApiKey::ApiVersions as i16, 3));
            let refuse = ApiVersionsResponse::default()
                .with_error_code(35)
                .with_api_keys(vec![range(ApiKey::ApiVersions, 0, 2)]);
            answer(&mut s, cid, 0, 0, &refuse).await;
            let (key, version, cid) = read_request(&mut s).await.unwrap();
            assert_eq!((key, version), (ApiKey::ApiVersions as i16, 2));
            let ok = ApiVersionsResponse::default().with_api_keys(vec![
                range(ApiKey::ApiVersions, 0, 2),
                range(ApiKey::Metadata, 0, 7),
                range(ApiKey::Produce, 0, 13),
                range(ApiKey::Fetch, 0, 3),
            ]);
            answer(&mut s, cid, 0, 2, &ok).await;
            s
        });
        let conn = Connection::open(&addr, "test".into(), "t", Duration::from_secs(5))
            .await
            .unwrap();
        let _socket = broker.await.unwrap();
        assert_eq!(conn.version(ApiKey::Metadata).unwrap(), 7);
        assert_eq!(
            conn.version(ApiKey::Produce).unwrap(),
            9,
            "capped at the client's 9"
        );
        let err = conn.version(ApiKey::Fetch).unwrap_err();
        assert!(err.to_string().contains("Fetch"), "{err}");
        assert!(conn.version(ApiKey::JoinGroup).is_err(), "not advertised");
    }

    /// The producer writes several requests before any answer comes back: they reach
    /// the broker in the order of the `send_request` calls, and each answer goes to its
    /// own caller.
    #[tokio::test]
    async fn requests_sent_before_any_answer_arrive_in_call_order() {
        use kafka_protocol::messages::{MetadataRequest, MetadataResponse};
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let broker = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let (_, _, cid) = read_request(&mut s).await.unwrap();
            let ok = ApiVersionsResponse::default().with_api_keys(vec![
                range(ApiKey::ApiVersions, 0, 3),
                range(ApiKey::Metadata, 0, 1),
            ]);
            answer(&mut s, cid, 0, 3, &ok).await;
            let mut cids = Vec::new();
            for _ in 0..3 {
                let (key, _, cid) = read_request(&mut s).await.unwrap();
                assert_eq!(key, ApiKey::Metadata as i16);
                cids.push(cid);
            }
            for &cid in &cids {
                let resp = MetadataResponse::default()
                    .with_controller_id(kafka_protocol::messages::BrokerId(cid));
                answer(&mut s, cid, 0, 1, &resp).await;
            }
            (s, cids)
        });
        let conn = Arc::new(
            Connection::open(&addr, "test".into(), "t", Duration::from_secs(5))
                .await
                .unwrap(),
        );
        let mut answers = Vec::new();
        for _ in 0..3 {
            answers.push(
                conn.send_request(&MetadataRequest::default())
                    .await
                    .unwrap(),
            );
        }
        let (_socket, cids) = broker.await.unwrap();
        assert!(
            cids.windows(2).all(|w| w[0] < w[1]),
            "in call order: {cids:?}"
        );
        for (answer, cid) in answers.into_iter().zip(cids) {
            assert_eq!(answer.await.unwrap().controller_id.0, cid);
        }
    }
}
