//! Channel pairs for the two-party tests of every module.

use std::net::{TcpListener, TcpStream};

use crate::channel::{Channel, ChannelConfig};

/// Two connected in-memory ends with the default configuration.
pub(crate) fn memory_pair() -> (Channel, Channel) {
    Channel::in_memory_pair(ChannelConfig::default())
}

/// Two ends of a loopback TCP connection with the default configuration: (accepting end,
/// connecting end).
pub(crate) fn tcp_pair() -> (Channel, Channel) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let client = std::thread::spawn(move || TcpStream::connect(addr).unwrap());
    let (server, _) = listener.accept().unwrap();
    let client = client.join().unwrap();
    (
        Channel::tcp(server, ChannelConfig::default()).unwrap(),
        Channel::tcp(client, ChannelConfig::default()).unwrap(),
    )
}
