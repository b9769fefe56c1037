//! The handshake known-answer check against running net-mesh 0.23 nodes (see
//! `netmesh_differential::kat`); `refnode kat` runs the same and prints what it observed.

#[test]
fn handshake_and_keys_agree_with_net_mesh_nodes() {
    let outcomes = netmesh_differential::kat::run().expect("sockets and runtime");
    assert_eq!(outcomes.len(), 4);
    for o in &outcomes {
        assert!(
            o.failures.is_empty(),
            "{}: {:#?}\n{:#?}",
            o.name,
            o.failures,
            o.notes
        );
    }
}
