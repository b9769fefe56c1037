//! TEMPORARY skeleton until netmesh-udp's Endpoint lands.
#![allow(dead_code, unused_variables, clippy::missing_errors_doc)]

use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use bytes::Bytes;
use netmesh_session::{Psk, PublicKey, StaticKeypair};

use crate::report::Report;
use crate::Failure;

pub(crate) type PeerKey = u64;

pub(crate) struct NodeConfig {
    pub(crate) bind: SocketAddr,
    pub(crate) keypair: Option<StaticKeypair>,
    pub(crate) psk: Psk,
    pub(crate) mesh: Option<(u64, u64)>,
    pub(crate) expect_peers: bool,
}

pub(crate) enum Incoming {
    Connected(PeerHandle),
    Delivery {
        peer: PeerKey,
        reliable: bool,
        events: Vec<Bytes>,
    },
    Lost {
        peer: PeerKey,
        count: u64,
    },
    Other,
}

#[derive(Clone, Debug)]
pub(crate) struct PeerHandle;

impl PeerHandle {
    pub(crate) fn send(
        &self,
        stream: u64,
        events: &[Bytes],
        reliable: bool,
    ) -> Result<(), Failure> {
        todo!()
    }
    pub(crate) fn wait_settled(&self, stop: &AtomicBool, timeout: Duration) -> bool {
        todo!()
    }
    pub(crate) fn events_sent(&self) -> u64 {
        todo!()
    }
    pub(crate) fn events_lost(&self) -> u64 {
        todo!()
    }
}

pub(crate) struct Node;

impl Node {
    pub(crate) fn bind(config: NodeConfig) -> Result<Self, Failure> {
        todo!()
    }
    pub(crate) fn local_addr(&self) -> SocketAddr {
        todo!()
    }
    pub(crate) fn connect(
        &self,
        to: SocketAddr,
        key: PublicKey,
        timeout: Duration,
    ) -> Result<PeerHandle, Failure> {
        todo!()
    }
    pub(crate) fn next(&self, wait: Duration) -> Option<Incoming> {
        todo!()
    }
    pub(crate) fn add_stats(&self, report: &mut Report) {
        todo!()
    }
}
