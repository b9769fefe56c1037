//! netmesh AEAD cipher (under construction).
