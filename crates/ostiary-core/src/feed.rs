//! The revocation feed: the ended sessions (`sid`) and revoked access tokens (`jti`) of the last
//! access-token lifetime, for resource servers.

use std::sync::Arc;

use crate::Idp;
use crate::idp::{IdpError, RevocationPage};

impl Idp {
    /// How long a revocation matters, seconds: the longest an access token issued before it
    /// can still be valid. Resource servers may forget an entry this long after it was revoked.
    pub fn revocation_retention(&self) -> i64 {
        self.config.access_token_ttl
    }

    /// The revocation feed after the cursor `after` (0: from the start of the retention
    /// window), at most `limit` entries. Entries older than the retention window are skipped
    /// (and deleted by the retention job, [`crate::retention`]): they can no longer matter.
    pub async fn revocation_feed(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<RevocationPage, IdpError> {
        let now = self.now();
        let retention = self.revocation_retention();
        let since = now - retention;
        let entries = self
            .store
            .list_revocations(after.max(0), since, limit)
            .await?;
        let cursor = match entries.last() {
            Some(last) => last.seq,
            // A cursor beyond anything this feed ever issued comes from another database (a
            // reset or a restore): send the reader back to the start, or it would wait forever
            // for sequence numbers that may never come.
            None if after > self.store.latest_revocation_seq().await? => 0,
            None => after.max(0),
        };
        Ok(RevocationPage {
            entries,
            cursor,
            retention,
            now,
        })
    }

    /// Notified whenever this process publishes a revocation. Other processes sharing the
    /// database are only seen by reading the feed again.
    pub fn revocation_notifier(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.revocations)
    }
}
