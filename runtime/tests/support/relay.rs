//! A TCP relay to a test database that can be cut, silenced and mended:
//! what the store and the nodes do when PostgreSQL goes away.

use std::sync::atomic::Ordering;

/// A TCP relay to the database that can be cut (every connection closed,
/// the port refusing new ones, as a stopped server's would), silenced
/// (nothing passes either way and nothing is closed, as when the network
/// is cut between two hosts) and mended (the same port open again, every
/// connection new).
pub struct Relay {
    pub addr: std::net::SocketAddr,
    target: std::net::SocketAddr,
    task: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    silent: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Relay {
    /// A relay to the database of `url`, and the URL through it.
    pub async fn start(url: &str) -> (Relay, String) {
        let mut through = reqwest::Url::parse(url).unwrap();
        let target =
            tokio::net::lookup_host((through.host_str().unwrap(), through.port().unwrap_or(5432)))
                .await
                .unwrap()
                .next()
                .unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        through.set_port(Some(addr.port())).unwrap();
        let relay = Relay {
            addr,
            target,
            task: std::sync::Mutex::new(None),
            silent: Default::default(),
        };
        relay.serve(listener);
        (relay, through.to_string())
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, silent) = (self.target, self.silent.clone());
        silent.store(false, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            // Dropped with the task: every relayed connection closes.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (inbound, _) = listener.accept().await.unwrap();
                let silent = silent.clone();
                connections.spawn(async move {
                    if silent.load(Ordering::SeqCst) {
                        // Accepted, and goes nowhere.
                        let _open = inbound;
                        return std::future::pending().await;
                    }
                    let outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let (from_node, to_node) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    tokio::join!(
                        pass(from_node, to_server, &silent),
                        pass(from_server, to_node, &silent)
                    );
                });
            }
        });
        *self.task.lock().unwrap() = Some(task);
    }

    /// Closes every connection; the port refuses new ones.
    pub async fn cut(&self) {
        let task = self.task.lock().unwrap().take().unwrap();
        task.abort();
        let _ = task.await;
    }

    /// Nothing passes any more, nothing is closed; connections are still
    /// accepted (and go nowhere).
    #[allow(dead_code)] // not by every test binary that includes the relay
    pub fn silence(&self) {
        self.silent.store(true, Ordering::SeqCst);
    }

    /// Opens the port again.
    pub async fn mend(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// Passes bytes one way until the end (closing the other side's writing
/// half), or until the relay is silent: what is read after it is silenced
/// is never passed on, and both ends stay open.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: &std::sync::atomic::AtomicBool,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if silent.load(Ordering::SeqCst) {
            return std::future::pending().await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    let _ = to.shutdown().await;
    // Held until the relay is cut.
    let _open = (from, to);
    std::future::pending().await
}
