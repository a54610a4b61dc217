//! `cargo run -p sandbot-example-backend [ADDR]` (default 127.0.0.1:8787).

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| sandbot_example_backend::DEFAULT_ADDR.to_string());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    eprintln!(
        "example backend listening on http://{}",
        listener.local_addr()?
    );
    sandbot_example_backend::serve(listener).await
}
