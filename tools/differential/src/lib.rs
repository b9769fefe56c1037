//! Drivers for checking netmesh against net-mesh 0.23: real net-mesh nodes ([`nodes`]),
//! a minimal netmesh peer over a std socket ([`peer`]), SESSION.md's event content
//! ([`content`]) and the handshake known-answer check ([`kat`]).

pub mod content;
pub mod kat;
pub mod nodes;
pub mod peer;
