//! The retention job in the background (see [`ostiary_core::retention`]): every instance
//! runs [`Idp::apply_retention`] every `retention.interval` seconds; the store's lease lets one
//! of them do the work each time.

use std::time::Duration;

use ostiary_core::Idp;

/// Runs a retention pass every interval, the first one interval after start, until `stop`
/// changes. (A session whose time ran out while the IdP was down is refused as soon as it is
/// used anyway; the pass publishes its end.)
pub async fn run_worker(idp: Idp, mut stop: tokio::sync::watch::Receiver<bool>) {
    // Names this instance's claims on the job.
    let holder = ostiary_core::secret::random_id();
    let interval = Duration::from_secs(idp.config().retention.interval.unsigned_abs());
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            _ = stop.changed() => return,
        }
        if let Err(error) = idp.apply_retention(&holder).await {
            tracing::error!(%error, "the retention pass failed; will retry");
        }
    }
}
