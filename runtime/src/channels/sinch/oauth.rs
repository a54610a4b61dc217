//! OAuth2 client-credentials tokens for Sinch channels: fetched on first use,
//! cached until a minute before they expire, refreshed when the API answers 401.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use crate::channels::delivery::TokenSource;
use crate::serve::config::SinchChannel;

pub struct SinchTokens {
    channels: HashMap<String, SinchChannel>,
    cache: Mutex<HashMap<String, (String, Instant)>>,
    client: reqwest::Client,
}

impl SinchTokens {
    pub fn new(channels: impl IntoIterator<Item = SinchChannel>) -> Self {
        Self {
            channels: channels.into_iter().map(|c| (c.id.clone(), c)).collect(),
            cache: Mutex::new(HashMap::new()),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .expect("an HTTP client"),
        }
    }

    async fn fetch(&self, c: &SinchChannel) -> Result<(String, Instant), String> {
        let res = self
            .client
            .post(c.auth_url())
            .basic_auth(&c.client_id, Some(&c.client_secret))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .map_err(|e| format!("token request failed: {e}"))?;
        let status = res.status();
        let text = res.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("token endpoint answered {status}"));
        }
        let v: Value = serde_json::from_str(&text).map_err(|e| format!("token answer: {e}"))?;
        let token = v["access_token"]
            .as_str()
            .ok_or("no access_token in the token answer")?;
        let lifetime = v["expires_in"]
            .as_u64()
            .unwrap_or(3600)
            .saturating_sub(60)
            .max(1);
        Ok((
            token.to_string(),
            Instant::now() + Duration::from_secs(lifetime),
        ))
    }
}

impl TokenSource for SinchTokens {
    fn token<'a>(
        &'a self,
        name: &'a str,
        refresh: bool,
    ) -> Pin<Box<dyn Future<Output = Result<String, String>> + Send + 'a>> {
        Box::pin(async move {
            let c = self
                .channels
                .get(name)
                .ok_or_else(|| format!("no sinch channel `{name}`"))?;
            let mut cache = self.cache.lock().await;
            if !refresh
                && let Some((token, until)) = cache.get(name)
                && Instant::now() < *until
            {
                return Ok(token.clone());
            }
            let fresh = self.fetch(c).await?;
            cache.insert(name.to_string(), fresh.clone());
            Ok(fresh.0)
        })
    }

    fn sources(&self) -> Vec<String> {
        self.channels.keys().cloned().collect()
    }
}
