//! Real net-mesh 0.23 nodes as peers: its point-to-point `NetAdapter` (empty prologue)
//! and its `MeshNode` (mesh prologue), either role, sending and receiving events. Run
//! them inside a tokio runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use net::adapter::net::{
    EntityKeypair, MeshNode, MeshNodeConfig, NetAdapter, NetAdapterConfig, StaticKeypair,
};
use net::adapter::Adapter;
use net::error::AdapterError;
use net::event::{Batch, InternalEvent};

/// Which of net-mesh's node types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `NetAdapter`: one peer, empty prologue.
    Adapter,
    /// `MeshNode`: many peers, mesh prologue.
    Mesh,
}

impl std::str::FromStr for Kind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "adapter" => Ok(Self::Adapter),
            "mesh" => Ok(Self::Mesh),
            other => Err(format!("unknown node kind {other:?} (adapter or mesh)")),
        }
    }
}

/// A MeshNode's id on the wire (in the prologue): its node id truncated to u32.
pub fn wire_id(node_id: u64) -> u64 {
    u64::from(node_id as u32)
}

/// The wire id of the MeshNode whose identity is `identity_seed`.
pub fn mesh_wire_id(identity_seed: [u8; 32]) -> u64 {
    wire_id(EntityKeypair::from_bytes(identity_seed).node_id())
}

/// Timing shared by the node types.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// Heartbeat period.
    pub heartbeat: Duration,
    /// Handshake attempts.
    pub handshake_retries: usize,
    /// Time each attempt waits.
    pub handshake_timeout: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            heartbeat: Duration::from_millis(200),
            handshake_retries: 3,
            handshake_timeout: Duration::from_secs(5),
        }
    }
}

/// A NetAdapter responder: binds `bind` and completes one handshake (its `init` waits
/// for msg1). `secret`/`public` is its static keypair.
pub async fn adapter_responder(
    bind: SocketAddr,
    psk: [u8; 32],
    secret: [u8; 32],
    public: [u8; 32],
    timing: Timing,
) -> Result<RefNode, AdapterError> {
    // The responder replies to the address msg1 came from; peer_addr is only a hint.
    let config =
        NetAdapterConfig::responder(bind, bind, psk, StaticKeypair::from_keys(secret, public))
            .with_heartbeat_interval(timing.heartbeat)
            .with_handshake(timing.handshake_retries, timing.handshake_timeout);
    let shards = config.num_shards;
    let mut adapter = NetAdapter::new(config)?;
    adapter.init().await?;
    Ok(RefNode::adapter(adapter, shards))
}

/// A NetAdapter initiator: binds `bind`, handshakes with `peer`.
pub async fn adapter_initiator(
    bind: SocketAddr,
    peer: SocketAddr,
    psk: [u8; 32],
    peer_public: [u8; 32],
    timing: Timing,
) -> Result<RefNode, AdapterError> {
    let config = NetAdapterConfig::initiator(bind, peer, psk, peer_public)
        .with_heartbeat_interval(timing.heartbeat)
        .with_handshake(timing.handshake_retries, timing.handshake_timeout);
    let shards = config.num_shards;
    let mut adapter = NetAdapter::new(config)?;
    adapter.init().await?;
    Ok(RefNode::adapter(adapter, shards))
}

/// A bound MeshNode before its handshake: its public key, wire id and address are
/// known, so the other side can be configured.
pub struct MeshSetup {
    node: Arc<MeshNode>,
    shards: u16,
}

impl std::fmt::Debug for MeshSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MeshSetup")
            .field("wire_id", &self.wire_id())
            .field("addr", &self.local_addr())
            .finish()
    }
}

impl MeshSetup {
    /// Binds a MeshNode with a fresh static key and the identity of `identity_seed` (an
    /// ed25519 secret, so its node id is known in advance; see [`mesh_wire_id`]), or a
    /// fresh identity.
    pub async fn bind(
        bind: SocketAddr,
        psk: [u8; 32],
        timing: Timing,
        identity_seed: Option<[u8; 32]>,
    ) -> Result<Self, AdapterError> {
        let config = MeshNodeConfig::new(bind, psk)
            .with_heartbeat_interval(timing.heartbeat)
            .with_handshake(timing.handshake_retries, timing.handshake_timeout);
        let shards = config.num_shards;
        let identity =
            identity_seed.map_or_else(EntityKeypair::generate, EntityKeypair::from_bytes);
        let node = MeshNode::new(identity, config).await?;
        Ok(Self {
            node: Arc::new(node),
            shards,
        })
    }

    /// Its static X25519 public key.
    pub fn public_key(&self) -> [u8; 32] {
        *self.node.public_key()
    }

    /// Its id as it appears in the mesh prologue.
    pub fn wire_id(&self) -> u64 {
        wire_id(self.node.node_id())
    }

    /// Its bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.node.local_addr()
    }

    /// Responder: waits for the handshake of the initiator whose wire id is
    /// `peer_wire_id`, then starts the node.
    pub async fn accept(self, peer_wire_id: u64) -> Result<(RefNode, SocketAddr), AdapterError> {
        let (addr, _) = self.node.accept(peer_wire_id).await?;
        self.node.start();
        Ok((RefNode::mesh(self.node, self.shards), addr))
    }

    /// Initiator: handshakes with the responder at `peer` (static key `peer_public`, wire
    /// id `peer_wire_id`), then starts the node.
    pub async fn connect(
        self,
        peer: SocketAddr,
        peer_public: [u8; 32],
        peer_wire_id: u64,
    ) -> Result<RefNode, AdapterError> {
        self.node.connect(peer, &peer_public, peer_wire_id).await?;
        self.node.start();
        Ok(RefNode::mesh(self.node, self.shards))
    }
}

enum Inner {
    Adapter(Box<NetAdapter>),
    Mesh(Arc<MeshNode>),
}

/// A running net-mesh node with one established session.
pub struct RefNode {
    inner: Inner,
    shards: u16,
}

impl std::fmt::Debug for RefNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefNode")
            .field("kind", &self.kind())
            .field("shards", &self.shards)
            .finish()
    }
}

impl RefNode {
    fn adapter(adapter: NetAdapter, shards: u16) -> Self {
        Self {
            inner: Inner::Adapter(Box::new(adapter)),
            shards,
        }
    }

    fn mesh(node: Arc<MeshNode>, shards: u16) -> Self {
        Self {
            inner: Inner::Mesh(node),
            shards,
        }
    }

    /// Which node type.
    pub fn kind(&self) -> Kind {
        match self.inner {
            Inner::Adapter(_) => Kind::Adapter,
            Inner::Mesh(_) => Kind::Mesh,
        }
    }

    fn as_adapter(&self) -> &dyn Adapter {
        match &self.inner {
            Inner::Adapter(a) => a.as_ref(),
            Inner::Mesh(m) => m.as_ref(),
        }
    }

    /// Sends `events` on `stream` (net-mesh sends a batch on the stream id of its shard,
    /// so the stream must fit a u16).
    pub async fn send(&self, stream: u16, events: &[Bytes]) -> Result<(), AdapterError> {
        let batch = Batch {
            shard_id: stream,
            events: events
                .iter()
                .enumerate()
                .map(|(i, e)| InternalEvent::new(e.clone(), i as u64, stream))
                .collect(),
            sequence_start: 0,
            process_nonce: net::event::batch_process_nonce(),
        };
        self.as_adapter().on_batch(Arc::new(batch)).await
    }

    /// Takes every event delivered so far, from all shards.
    pub async fn poll(&self) -> Result<Vec<Bytes>, AdapterError> {
        let mut out = Vec::new();
        for shard in 0..self.shards {
            loop {
                let got = self.as_adapter().poll_shard(shard, None, 4096).await?;
                let more = got.has_more;
                out.extend(got.events.into_iter().map(|e| e.raw));
                if !more {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Polls until `count` events arrived in all or `timeout` passed.
    pub async fn collect(
        &self,
        count: usize,
        timeout: Duration,
    ) -> Result<Vec<Bytes>, AdapterError> {
        let end = tokio::time::Instant::now() + timeout;
        let mut out = Vec::new();
        while out.len() < count && tokio::time::Instant::now() < end {
            out.extend(self.poll().await?);
            if out.len() < count {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(out)
    }

    /// Stops the node.
    pub async fn shutdown(&self) -> Result<(), AdapterError> {
        self.as_adapter().shutdown().await
    }
}
