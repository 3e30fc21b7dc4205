//! Runs `serve_with` on 127.0.0.1 and talks to it like a relay agent would
//! (giaddr = 127.0.0.1), since a real client needs a namespace.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use neutrino_dhcp::codec::{OPT_MESSAGE_TYPE, OPT_REQUESTED_IP, OPT_SERVER_ID};
use neutrino_dhcp::{
    Message, MessageType, Reservation, ServeConfig, Stats, SubnetParams, Table, bind_udp_socket,
    serve_with,
};
use tokio::net::UdpSocket;
use tokio::sync::watch;

const MAC: neutrino_dhcp::Mac = neutrino_dhcp::Mac::new([0xfa, 0x16, 0x3e, 0xaa, 0xbb, 0xcc]);
const IP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 5);
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

fn table(ip: Ipv4Addr) -> Table {
    let subnet = Arc::new(SubnetParams {
        network: "10.0.0.0/24".parse().unwrap(),
        router: Some(Ipv4Addr::new(10, 0, 0, 1)),
        dns: vec![Ipv4Addr::new(10, 0, 0, 3)],
        domain: "openstacklocal".into(),
        mtu: Some(1450),
        routes: vec![],
        lease_secs: 3600,
        server_id: SERVER,
    });
    Table::new([Reservation {
        mac: MAC,
        ip,
        hostname: "vm".into(),
        subnet,
        extra: Arc::from(Vec::new()),
    }])
}

fn message(t: MessageType, xid: u32) -> Message {
    let mut m = Message::default();
    m.header.xid = xid;
    m.header.hops = 1;
    m.header.giaddr = Ipv4Addr::LOCALHOST;
    m.header.chaddr[..6].copy_from_slice(MAC.as_bytes());
    m.options.push((OPT_MESSAGE_TYPE, vec![t as u8]));
    m
}

async fn exchange(relay: &UdpSocket, server: SocketAddrV4, m: &Message) -> Message {
    let mut b = Vec::new();
    m.encode(&mut b);
    relay.send_to(&b, server).await.unwrap();
    let mut buf = [0u8; 2048];
    let (n, from) = tokio::time::timeout(Duration::from_secs(5), relay.recv_from(&mut buf))
        .await
        .expect("no reply within 5s")
        .unwrap();
    assert_eq!(from, server.into());
    Message::decode(&buf[..n]).unwrap()
}

#[tokio::test]
async fn relayed_discover_request() {
    let std_sock = bind_udp_socket(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0), None).unwrap();
    let server_addr = match std_sock.local_addr().unwrap() {
        std::net::SocketAddr::V4(a) => a,
        other => panic!("{other}"),
    };
    let server_sock = UdpSocket::from_std(std_sock).unwrap();
    let relay = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let relay_port = relay.local_addr().unwrap().port();

    let table = Arc::new(ArcSwap::from_pointee(table(IP)));
    let stats = Arc::new(Stats::new());
    let (stop, stop_rx) = watch::channel(false);
    let task = tokio::spawn(serve_with(
        server_sock,
        table.clone(),
        stats.clone(),
        stop_rx,
        ServeConfig { relay_port },
    ));

    let offer = exchange(&relay, server_addr, &message(MessageType::Discover, 7)).await;
    assert_eq!(offer.message_type(), Some(MessageType::Offer));
    assert_eq!(offer.header.xid, 7);
    assert_eq!(offer.header.yiaddr, IP);
    assert_eq!(offer.header.giaddr, Ipv4Addr::LOCALHOST);
    assert_eq!(offer.header.hops, 1);
    assert_eq!(offer.server_id(), Some(SERVER));

    let mut req = message(MessageType::Request, 8);
    req.set_option(OPT_REQUESTED_IP, IP.octets().to_vec());
    req.set_option(OPT_SERVER_ID, SERVER.octets().to_vec());
    let ack = exchange(&relay, server_addr, &req).await;
    assert_eq!(ack.message_type(), Some(MessageType::Ack));
    assert_eq!(ack.header.xid, 8);
    assert_eq!(ack.header.yiaddr, IP);
    assert_eq!(ack.option(51), Some(&3600u32.to_be_bytes()[..]));

    // Garbage is counted, not answered; the loop keeps going.
    relay.send_to(b"garbage", server_addr).await.unwrap();

    // A table swap takes effect on the next packet: the old address is NAKed.
    table.store(Arc::new(self::table(Ipv4Addr::new(10, 0, 0, 6))));
    let nak = exchange(&relay, server_addr, &req).await;
    assert_eq!(nak.message_type(), Some(MessageType::Nak));

    assert_eq!(stats.get("discover", "offer"), 1);
    assert_eq!(stats.get("request", "ack"), 1);
    assert_eq!(stats.get("request", "nak"), 1);
    assert_eq!(stats.get("unknown", "malformed_too_short"), 1);

    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("serve did not stop")
        .unwrap();
}
