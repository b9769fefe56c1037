//! netmesh wire protocol (under construction).
