//! A TCP proxy that holds back every piece of data going from the client
//! to the server for a fixed time: a network with that round-trip time, as
//! far as the client can tell. Each request, and each client flight of a TLS
//! handshake, costs one delay; pieces sent while earlier ones wait are not
//! queued behind them (each is due its own arrival time plus the delay), as
//! on a real link. Answers flow back at once, and the TCP connect itself is
//! local (not delayed), so a new connection costs nothing until it carries
//! data: what is measured is request round trips and TLS handshakes.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::Url;
use std::time::Instant;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};

/// A delaying proxy in front of one service; stops (with every connection) when dropped.
pub struct DelayProxy {
    url: String,
    flights: Flights,
    task: JoinHandle<()>,
}

/// When each piece from a client arrived: (time, connection number, bytes).
type Flights = Arc<Mutex<Vec<(Instant, usize, usize)>>>;

impl DelayProxy {
    /// A proxy for the service at `url` (`http://` or `https://`, host and
    /// port used), adding `delay` to every client-to-server flight. Ready on return.
    pub async fn start(url: &str, delay: Duration) -> DelayProxy {
        let upstream_url = Url::parse(url).expect("service URL");
        let upstream: SocketAddr = upstream_url.socket_addrs(|| None).expect("service address")[0];
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .expect("bind 127.0.0.1:0");
        let mut proxied = upstream_url.clone();
        proxied
            .set_port(Some(listener.local_addr().expect("local addr").port()))
            .expect("set port");
        let flights = Flights::default();
        let log = flights.clone();
        let task = tokio::spawn(async move {
            // Dropping the set (when this task is aborted) aborts every connection.
            let mut connections = JoinSet::new();
            let mut number = 0;
            while let Ok((client, _)) = listener.accept().await {
                number += 1;
                connections.spawn(relay(client, upstream, delay, number, log.clone()));
            }
        });
        DelayProxy {
            url: proxied.as_str().trim_end_matches('/').to_string(),
            flights,
            task,
        }
    }

    /// The pieces clients sent since `since`, as (milliseconds after
    /// `since`, connection number, bytes): for explaining a slow run.
    pub fn flights_since(&self, since: Instant) -> Vec<(u128, usize, usize)> {
        let flights = self.flights.lock().expect("flights");
        flights
            .iter()
            .filter(|(at, _, _)| *at >= since)
            .map(|(at, c, n)| ((*at - since).as_millis(), *c, *n))
            .collect()
    }

    /// The service's URL through the proxy (no trailing slash).
    pub fn url(&self) -> String {
        self.url.clone()
    }
}

impl Drop for DelayProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One connection: client → server delayed piece by piece, server → client at once.
async fn relay(
    client: TcpStream,
    upstream: SocketAddr,
    delay: Duration,
    number: usize,
    flights: Flights,
) {
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let (pieces, mut due) = mpsc::unbounded_channel::<(Instant, Vec<u8>)>();
    let read = async move {
        let mut buf = vec![0; 64 * 1024];
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            flights
                .lock()
                .expect("flights")
                .push((Instant::now(), number, n));
            if pieces
                .send((Instant::now() + delay, buf[..n].to_vec()))
                .is_err()
            {
                break;
            }
        }
    };
    let forward = async move {
        while let Some((at, piece)) = due.recv().await {
            tokio::time::sleep_until(at.into()).await;
            if server_write.write_all(&piece).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let back = async move {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(read, forward, back);
}
