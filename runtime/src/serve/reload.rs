//! Picks up changed bot folders without a restart: every interval each
//! deployment's folder is fingerprinted; a change is loaded and validated,
//! then swapped in for the next turns (conversations continue: their session
//! and position are data). An invalid change is refused and logged with its
//! problems, and the old version keeps serving.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::state::AppState;
use crate::flow::Bot;
use crate::flow::bot::fingerprint;

pub async fn run(state: Arc<AppState>, every: Duration, mut stop: watch::Receiver<bool>) {
    // Fingerprints already refused, so a broken folder is reported once.
    let mut refused: HashMap<String, String> = HashMap::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        for (key, d) in &state.bots {
            let id = &d.id;
            // A LIVE deployment follows its published version (a publish on
            // another node sharing the folder included).
            let folder = d.source();
            let dir = folder.clone();
            let Ok(now) = tokio::task::spawn_blocking(move || fingerprint(&dir)).await else {
                continue;
            };
            if now == d.bot().fingerprint || refused.get(key) == Some(&now) {
                continue;
            }
            match tokio::task::spawn_blocking(move || Bot::load(&folder)).await {
                Ok(Ok(bot)) if bot.id() == id => {
                    tracing::info!(
                        bot = id,
                        version = d.version,
                        blocks = bot.blocks.len(),
                        "bot reloaded"
                    );
                    refused.remove(key);
                    d.replace(bot);
                }
                Ok(Ok(bot)) => {
                    tracing::warn!(
                        bot = id,
                        new_id = bot.id(),
                        "bot change refused: its id changed; restart to rename a bot"
                    );
                    state.metrics.reload_refused(&d.tenant, id);
                    refused.insert(key.clone(), now);
                }
                Ok(Err(problems)) => {
                    tracing::warn!(
                        bot = id,
                        "bot change refused, the previous version keeps serving: {problems}"
                    );
                    state.metrics.reload_refused(&d.tenant, id);
                    refused.insert(key.clone(), now);
                }
                Err(_) => {}
            }
        }
    }
}
