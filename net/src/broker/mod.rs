//! `eddy broker`: the core on tokio behind a Kafka listener.
//!
//! ```text
//!   TCP connection ──▶ connection task ──▶ handlers/<api>.rs ──▶ Command ──▶ node actor
//!   (one per client)   frames, order        Kafka messages ⇄        (one task: Node,
//!                      of responses         core requests           disks, metadata)
//! ```
//!
//! [`Broker::start`] opens the log dirs (recovering every partition), starts the node
//! actor and binds the listener; [`Broker::serve`] accepts connections until the
//! shutdown future completes, then lets the actor flush every log.

mod actor;
mod connection;
mod handlers;
mod quorum;

use std::net::SocketAddr;
use std::sync::Arc;

use eddy_core::config::BrokerConfig;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Notify};

pub(crate) use actor::Command;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("listeners = {value:?}: {reason}")]
    Listener { value: String, reason: String },
    #[error("cannot listen on {addr}: {source}; is another broker (or Kafka) using the port?")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("the node stopped before it caught up with the metadata log; see the errors above")]
    Quorum,
    #[error("cannot open the log dirs: {0}")]
    Storage(#[from] crate::storage::StorageError),
}

/// Frames from peers waiting for the node actor.
const PEER_QUEUE: usize = 4096;

/// What every connection shares: the way to the node actor and the settings the
/// handlers need.
pub(crate) struct Shared {
    pub(crate) commands: mpsc::Sender<Command>,
    pub(crate) cfg: BrokerConfig,
    /// This node's `meta.properties` cluster id: reported until the metadata log has
    /// the cluster's.
    pub(crate) cluster_id: String,
    /// Where peer connections arriving on the client listener deliver their frames (a
    /// broker-only node has no listener of its own for them).
    pub(crate) peers: mpsc::Sender<(eddy_core::types::NodeId, crate::peer::codec::PeerFrame)>,
}

impl Shared {
    /// Sends a command to the node actor. `false` when the actor is gone (shutting down).
    pub(crate) async fn send(&self, cmd: Command) -> bool {
        self.commands.send(cmd).await.is_ok()
    }
}

/// A started broker, listening.
pub struct Broker {
    listener: TcpListener,
    shared: Arc<Shared>,
    actor: tokio::task::JoinHandle<()>,
    /// Open once clients are served (always, after [`Broker::start`]).
    serving: Serving,
}

/// Whether this broker serves clients yet: connections accepted while it catches up
/// wait on it. Not a `tokio::sync::watch`: a watch receiver waits in one of 8 queues
/// picked by tokio's thread-local RNG, which tokio seeds from a process-wide counter, so
/// the order the waiting connections woke in depended on what had run earlier in the
/// process — under madsim, a seed's second run in one process diverged from its first.
/// `Notify` wakes its waiters in the order they came.
#[derive(Clone, Default)]
pub(crate) struct Serving(Arc<ServingState>);

#[derive(Default)]
struct ServingState {
    /// `WAITING`, `SERVING` or `NEVER`.
    state: std::sync::atomic::AtomicU8,
    changed: Notify,
}

const WAITING: u8 = 0;
const SERVING: u8 = 1;
/// The broker did not start.
const NEVER: u8 = 2;

impl Serving {
    /// Waits until clients are served: `true`, or `false` if the broker did not start.
    pub(crate) async fn ready(&self) -> bool {
        use std::sync::atomic::Ordering;
        loop {
            // Made before the state is read, so a change in between still wakes it.
            let changed = self.0.changed.notified();
            match self.0.state.load(Ordering::SeqCst) {
                SERVING => return true,
                NEVER => return false,
                _ => changed.await,
            }
        }
    }

    fn set(&self, state: u8) {
        use std::sync::atomic::Ordering;
        let _ = self
            .0
            .state
            .compare_exchange(WAITING, state, Ordering::SeqCst, Ordering::SeqCst);
        self.0.changed.notify_waiters();
    }
}

/// Opens [`Serving`] once; dropped unopened (the start failed), it tells the waiting
/// connections to close.
struct ServingGate(Serving);

impl ServingGate {
    fn open(self) {
        self.0.set(SERVING);
    }
}

impl Drop for ServingGate {
    fn drop(&mut self) {
        self.0.set(NEVER);
    }
}

/// The name of the listener controllers and brokers reach each other on, as KRaft's
/// `controller.listener.names` usually says; its address is this node's entry in
/// `controller.quorum.voters`, so it is skipped when looking for the client listener.
const CONTROLLER_LISTENER: &str = "CONTROLLER";

/// The client listener of `listeners` (the first not named CONTROLLER):
/// `PLAINTEXT://host:port` → (host, port). Eddy's listeners are all plaintext.
pub fn parse_listener(value: &str) -> Result<(String, u16), String> {
    let first = value
        .split(',')
        .map(str::trim)
        .find(|l| {
            !l.split_once("://")
                .is_some_and(|(name, _)| name.eq_ignore_ascii_case(CONTROLLER_LISTENER))
        })
        .unwrap_or_default();
    let rest = first
        .split_once("://")
        .map(|(proto, rest)| {
            if proto.eq_ignore_ascii_case("PLAINTEXT") {
                Ok(rest)
            } else {
                Err(format!(
                    "listener {first:?} is not PLAINTEXT; Eddy speaks plaintext only"
                ))
            }
        })
        .unwrap_or(Err(format!(
            "listener {first:?} is not of the form PLAINTEXT://host:port"
        )))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("listener {first:?} has no port"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("listener {first:?} has an invalid port {port:?}"))?;
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

/// `host:port` to dial, IPv6 hosts in brackets.
pub(crate) fn dial_address(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

impl Broker {
    /// Recovers the logs and binds the listener. `incarnation` must differ on every
    /// start (the start time in ms serves).
    pub async fn start(cfg: BrokerConfig, incarnation: u64) -> Result<Broker, StartError> {
        let (host, port) =
            parse_listener(&cfg.listeners).map_err(|reason| StartError::Listener {
                value: cfg.listeners.clone(),
                reason,
            })?;
        let bind_host = if host.is_empty() {
            "0.0.0.0".to_string()
        } else {
            host.clone()
        };
        let addr = format!("{bind_host}:{port}");
        let advertised = match &cfg.advertised_listeners {
            Some(a) => parse_listener(a).map_err(|reason| StartError::Listener {
                value: a.clone(),
                reason,
            })?,
            None => (host, port),
        };
        let cluster_id = crate::meta::cluster_id(&cfg)?;
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: addr.clone(),
                source,
            })?;
        let advertised_host = match advertised.0.as_str() {
            "" | "0.0.0.0" | "::" => "127.0.0.1".to_string(),
            h => h.to_string(),
        };
        let listener_port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(advertised.1);
        // Port 0 asks the OS for one: advertise what it gave.
        let advertised_port = if advertised.1 == 0 {
            listener_port
        } else {
            advertised.1
        };
        // The peer listener: this node's address among the voters, when there are others.
        // A broker-only node takes peer connections on its client listener, and says so
        // in the `Hello` its links start with.
        let voters = quorum::voters(&cfg);
        let (peer_tx, peer_rx) = mpsc::channel(PEER_QUEUE);
        let mut me_addr = dial_address(&advertised_host, advertised_port);
        if voters.len() > 1 {
            if let Some(peer_addr) = voters.get(&cfg.node_id) {
                let bind = peer_addr.clone();
                let peers = TcpListener::bind(&bind)
                    .await
                    .map_err(|source| StartError::Bind {
                        addr: bind.clone(),
                        source,
                    })?;
                tracing::info!(address = %peer_addr, "listening for brokers and controllers");
                tokio::spawn(crate::peer::link::accept_peers(peers, peer_tx.clone()));
                me_addr = peer_addr.clone();
            }
        }
        if !cfg.process_roles.controller {
            tracing::info!(
                voters = %voters.iter().map(|(id, a)| format!("{}@{a}", id.0)).collect::<Vec<_>>().join(","),
                "broker only (process.roles=broker): following the metadata quorum's log as an observer"
            );
        }
        let links = crate::peer::link::PeerLinks::start(cfg.node_id, &me_addr, &voters);
        let me = actor::BrokerView {
            id: cfg.node_id,
            host: advertised_host.clone(),
            port: advertised_port.into(),
        };
        let (ready_tx, mut ready) = tokio::sync::oneshot::channel();
        let actor = actor::Actor::open(cfg.clone(), &cluster_id, incarnation, links, me, ready_tx)?;
        let (tx, rx) = mpsc::channel(actor::COMMAND_QUEUE);
        let actor = tokio::spawn(actor.run(rx, peer_rx));
        let shared = Arc::new(Shared {
            commands: tx,
            cfg,
            cluster_id,
            peers: peer_tx,
        });
        // Clients are served once this broker's metadata has caught up, as a KRaft
        // broker starts serving only then: before, it would answer that topics it has
        // do not exist. Connections are accepted meanwhile: peers dialling a broker-only
        // node (the voters replicating the metadata log to it) are served at once,
        // clients once it is ready.
        let gate = ServingGate(Serving::default());
        let serving_rx = gate.0.clone();
        let waiting_since = tokio::time::Instant::now();
        let mut waited = tokio::time::interval_at(
            waiting_since + std::time::Duration::from_secs(5),
            std::time::Duration::from_secs(5),
        );
        loop {
            // biased: under madsim an unbiased select draws from an RNG outside the seed.
            tokio::select! {
                biased;
                r = &mut ready => {
                    if r.is_err() {
                        return Err(StartError::Quorum);
                    }
                    break;
                }
                accepted = listener.accept() => {
                    if let Ok((stream, peer)) = accepted {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(connection::serve(
                            stream,
                            peer,
                            Arc::clone(&shared),
                            serving_rx.clone(),
                        ));
                    }
                }
                _ = waited.tick() => {
                    tracing::info!(
                        waited_s = waiting_since.elapsed().as_secs(),
                        voters = %voters.iter().map(|(id, a)| format!("{}@{a}", id.0)).collect::<Vec<_>>().join(","),
                        "waiting for a majority of the metadata quorum's voters (start the others)"
                    );
                }
            }
        }
        gate.open();
        Ok(Broker {
            listener,
            shared,
            actor,
            serving: serving_rx,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until `shutdown` completes; then stops accepting, and waits
    /// for the node actor to flush every log once the open connections are done.
    pub async fn serve(self, shutdown: impl std::future::Future<Output = ()>) {
        let Broker {
            listener,
            shared,
            actor,
            serving,
        } = self;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                biased;
                _ = &mut shutdown => break,
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(connection::serve(
                            stream,
                            peer,
                            Arc::clone(&shared),
                            serving.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of file descriptors, most often: wait, don't spin.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                    }
                },
            }
        }
        tracing::info!("shutting down: no new connections");
        drop(listener);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if shared.send(Command::Shutdown { reply: tx }).await {
            // The actor moves leadership away and flushes; bounded by its own deadline.
            let _ = tokio::time::timeout(std::time::Duration::from_secs(30), rx).await;
        }
        drop(shared);
        // Connections still open hold the command queue; give them a moment, then the
        // process exit closes them. The actor flushes when the last sender is gone.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(5), actor).await;
    }
}
