//! `ostiary backchannel list`: back-channel logouts not yet delivered.

use serde_json::json;

use crate::settings::Settings;

/// Prints the pending and given-up back-channel logout deliveries, one JSON object per line:
/// client, session, endpoint, attempts, next attempt (Unix seconds), given up at, last error.
pub async fn list(settings: &Settings) -> anyhow::Result<()> {
    let idp = super::open_idp(settings).await?;
    for delivery in idp.undelivered_backchannel_logouts().await? {
        println!(
            "{}",
            json!({
                "client_id": delivery.client_id, "sid": delivery.sid, "uri": delivery.uri,
                "attempts": delivery.attempts, "next_attempt_at": delivery.next_attempt_at,
                "failed_at": delivery.failed_at, "last_error": delivery.last_error,
            })
        );
    }
    Ok(())
}
