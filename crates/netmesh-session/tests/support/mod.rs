//! Set-up shared by the session tests.

use std::sync::Arc;
use std::time::Instant;

use netmesh_session::{Prologue, Psk, Responder, Session, SessionConfig, StaticKeypair};

/// A client and a server session after a real handshake (empty prologue, a fresh static
/// key), both established at `now`.
///
/// # Panics
///
/// If the handshake fails.
#[must_use]
pub(crate) fn established(
    client: SessionConfig,
    server: SessionConfig,
    now: Instant,
) -> (Session, Session) {
    let key = StaticKeypair::generate().expect("a static key");
    let psk = Psk::new([4; 32]);
    let (client, msg1) =
        Session::connect(client, &key.public_key(), &psk, &Prologue::Empty, now).expect("msg1");
    let (server, msg2) = Session::accept(
        server,
        Arc::new(Responder::new(&key, &psk)),
        &msg1,
        &Prologue::Empty,
        now,
    )
    .expect("msg2");
    client.handle_datagram(msg2, now).expect("msg2 accepted");
    (client, server)
}
