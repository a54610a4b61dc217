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
    /// Bytes whose statement's answer is lost (`Relay::lose_answer_to`).
    lose: Marker,
}

type Marker = std::sync::Arc<std::sync::Mutex<Option<Vec<u8>>>>;

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
            lose: Default::default(),
        };
        relay.serve(listener);
        (relay, through.to_string())
    }

    fn serve(&self, listener: tokio::net::TcpListener) {
        let (target, silent, lose) = (self.target, self.silent.clone(), self.lose.clone());
        silent.store(false, Ordering::SeqCst);
        let task = tokio::spawn(async move {
            // Dropped with the task: every relayed connection closes.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let (inbound, _) = listener.accept().await.unwrap();
                let (silent, marker) = (silent.clone(), lose.clone());
                connections.spawn(async move {
                    if silent.load(Ordering::SeqCst) {
                        // Accepted, and goes nowhere.
                        let _open = inbound;
                        return std::future::pending().await;
                    }
                    let outbound = tokio::net::TcpStream::connect(target).await.unwrap();
                    let (from_node, to_node) = inbound.into_split();
                    let (from_server, to_server) = outbound.into_split();
                    // Set when the node sends the marked statement on this
                    // connection: the server's next answer is lost.
                    let lose = std::sync::atomic::AtomicBool::new(false);
                    tokio::join!(
                        pass(from_node, to_server, &silent, Lose::Mark(&marker, &lose)),
                        pass(from_server, to_node, &silent, Lose::Answer(&lose))
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

    /// The answer to the next statement the node sends with `marker` in it
    /// (a bound text) is not passed on: that connection closes towards the
    /// node, which cannot tell whether its statement ran (it did).
    #[allow(dead_code)] // not by every test binary that includes the relay
    pub fn lose_answer_to(&self, marker: &str) {
        *self.lose.lock().unwrap() = Some(marker.as_bytes().to_vec());
    }

    /// Opens the port again.
    pub async fn mend(&self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }
}

/// How one way of a connection takes part in losing an answer.
enum Lose<'a> {
    /// Node to server: sets the flag when the marked statement passes.
    Mark(&'a Marker, &'a std::sync::atomic::AtomicBool),
    /// Server to node: with the flag set, drops what comes and closes.
    Answer(&'a std::sync::atomic::AtomicBool),
}

/// Passes bytes one way until the end (closing the other side's writing
/// half), or until the relay is silent: what is read after it is silenced
/// is never passed on, and both ends stay open. See [`Lose`].
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silent: &std::sync::atomic::AtomicBool,
    lose: Lose<'_>,
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
        match lose {
            Lose::Mark(marker, flag) => {
                let mut marker = marker.lock().unwrap();
                if let Some(m) = marker.as_deref()
                    && buf[..n].windows(m.len()).any(|w| w == m)
                {
                    *marker = None;
                    flag.store(true, Ordering::SeqCst);
                }
            }
            Lose::Answer(flag) if flag.load(Ordering::SeqCst) => break,
            Lose::Answer(_) => {}
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
