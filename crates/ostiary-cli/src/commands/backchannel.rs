//! `ostiary backchannel list`: back-channel logouts not yet delivered.

use crate::settings::Settings;

/// Prints the pending and given-up back-channel logout deliveries, one JSON object per line:
/// `id`, `client_id`, `sid`, `uri`, `attempts`, `next_attempt_at`, `delivered_at` (always
/// null here), `failed_at` (set once given up) and `last_error`; times in Unix seconds.
pub async fn list(settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    for delivery in idp.undelivered_backchannel_logouts().await? {
        out!("{}", serde_json::to_string(&delivery)?)?;
    }
    Ok(())
}
