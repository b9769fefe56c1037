//! A session: both directions of one peer link.

/// Both directions of one authenticated peer link.
#[derive(Debug)]
pub struct Session {}
