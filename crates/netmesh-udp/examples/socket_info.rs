//! Prints what the kernel grants a [`netmesh_udp::BatchSocket`]: buffer sizes, GSO, GRO.
//!
//! ```text
//! cargo run -p netmesh-udp --example socket_info
//! ```

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let socket = netmesh_udp::BatchSocket::bind(
        "127.0.0.1:0".parse()?,
        netmesh_udp::SocketOptions::default(),
    )?;
    println!("{:#?}", socket.info());
    Ok(())
}
