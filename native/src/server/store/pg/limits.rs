//! The rate limit shared by every API process (`--rate-limit`): one token bucket per client
//! address in the `rate_limits` table, refilled continuously and taken from in one statement
//! (the row locked), so N processes behind a load balancer allow what one would.

use anyhow::Result;
use sqlx::Row;

use super::PgStore;

impl PgStore {
    /// Takes one of `per_minute` tokens for `key`: `Ok(())`, or the seconds to wait.
    pub async fn take_token(&self, key: &str, per_minute: u32) -> Result<Result<(), u64>> {
        let cap = f64::from(per_minute);
        let row = sqlx::query(
            "INSERT INTO rate_limits AS r (key, tokens, allowed, at) VALUES ($1, $2 - 1, true, now()) \
             ON CONFLICT (key) DO UPDATE SET \
               tokens = CASE WHEN LEAST($2, r.tokens + extract(epoch from now() - r.at)::float8 * $2 / 60) >= 1 \
                             THEN LEAST($2, r.tokens + extract(epoch from now() - r.at)::float8 * $2 / 60) - 1 \
                             ELSE LEAST($2, r.tokens + extract(epoch from now() - r.at)::float8 * $2 / 60) END, \
               allowed = LEAST($2, r.tokens + extract(epoch from now() - r.at)::float8 * $2 / 60) >= 1, \
               at = now() \
             RETURNING tokens, allowed",
        )
        // A changed limit starts new buckets.
        .bind(format!("{per_minute}/{key}"))
        .bind(cap)
        .fetch_one(&self.pool)
        .await?;
        let (tokens, allowed): (f64, bool) = (row.try_get(0)?, row.try_get(1)?);
        if allowed {
            return Ok(Ok(()));
        }
        Ok(Err(((1.0 - tokens) * 60.0 / cap).ceil().max(1.0) as u64))
    }

    /// Forgets buckets untouched for ten minutes (full again: a minute refills any).
    pub async fn expire_rate_limits(&self) -> Result<()> {
        sqlx::query("DELETE FROM rate_limits WHERE at < now() - interval '10 minutes'")
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
