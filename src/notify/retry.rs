//! Delivery with retries: exponential backoff with full jitter, the server's `Retry-After`
//! honoured (capped by `max_backoff` and the remaining budget), a timeout per attempt and a
//! total budget, no retry after a permanent failure.

use std::time::Duration;

use rand::Rng;
use tokio::time::Instant;

use super::sink::{Notification, SendError, Sink};

/// How hard to try one notification on one sink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (at least 1).
    pub attempts: u32,
    /// Upper bound of the first backoff; doubles per retry up to `max_backoff`.
    pub initial_backoff: Duration,
    pub max_backoff: Duration,
    /// Per attempt: an attempt still running then is abandoned and counts as retryable.
    pub timeout: Duration,
    /// Total time for all attempts and waits of one notification.
    pub budget: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            budget: Duration::from_secs(120),
        }
    }
}

impl RetryPolicy {
    /// The exponential ceiling before retry number `retry` (1-based):
    /// `min(max_backoff, initial_backoff * 2^(retry-1))`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32
            .checked_shl(retry.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.initial_backoff
            .checked_mul(factor)
            .unwrap_or(self.max_backoff)
            .min(self.max_backoff)
    }

    /// Full jitter (uniform in `[0, ceiling]`): spreads the retries of many workers that
    /// failed together, so they do not hammer a recovering endpoint in lockstep.
    pub fn backoff(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry).as_millis().min(u64::MAX as u128) as u64;
        Duration::from_millis(rand::rng().random_range(0..=ceiling))
    }
}

/// Why a notification was not delivered. Every variant names the sink and the last reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    #[error("sink {sink}: permanent failure on attempt {attempts}: {reason}")]
    Permanent {
        sink: String,
        attempts: u32,
        reason: String,
    },
    #[error("sink {sink}: gave up after {attempts} attempts: {reason}")]
    AttemptsExhausted {
        sink: String,
        attempts: u32,
        reason: String,
    },
    #[error(
        "sink {sink}: time budget of {budget:?} exhausted after {attempts} attempts: {reason}"
    )]
    BudgetExhausted {
        sink: String,
        attempts: u32,
        budget: Duration,
        reason: String,
    },
}

impl DeliveryError {
    pub fn sink(&self) -> &str {
        match self {
            DeliveryError::Permanent { sink, .. }
            | DeliveryError::AttemptsExhausted { sink, .. }
            | DeliveryError::BudgetExhausted { sink, .. } => sink,
        }
    }

    pub fn reason(&self) -> &str {
        match self {
            DeliveryError::Permanent { reason, .. }
            | DeliveryError::AttemptsExhausted { reason, .. }
            | DeliveryError::BudgetExhausted { reason, .. } => reason,
        }
    }

    pub fn attempts(&self) -> u32 {
        match self {
            DeliveryError::Permanent { attempts, .. }
            | DeliveryError::AttemptsExhausted { attempts, .. }
            | DeliveryError::BudgetExhausted { attempts, .. } => *attempts,
        }
    }
}

/// Sends `n` through `sink` under `policy`; returns the number of attempts used.
pub async fn deliver(
    sink: &dyn Sink,
    n: &Notification,
    policy: &RetryPolicy,
) -> Result<u32, DeliveryError> {
    let start = Instant::now();
    let attempts = policy.attempts.max(1);
    let name = sink.name();
    let budget_error = |attempts: u32, reason: String| DeliveryError::BudgetExhausted {
        sink: name.to_owned(),
        attempts,
        budget: policy.budget,
        reason,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let remaining = policy.budget.saturating_sub(start.elapsed());
        // The per-attempt timeout never runs past the budget.
        let limit = policy.timeout.min(remaining);
        let err = match tokio::time::timeout(limit, sink.send(n)).await {
            Ok(Ok(())) => return Ok(attempt),
            Ok(Err(e)) => e,
            Err(_) => SendError::retryable(format!("no answer within {limit:?}")),
        };
        let (reason, retry_after) = match err {
            SendError::Permanent { reason } => {
                return Err(DeliveryError::Permanent {
                    sink: name.to_owned(),
                    attempts: attempt,
                    reason,
                })
            }
            SendError::Retryable {
                reason,
                retry_after,
            } => (reason, retry_after),
        };
        if attempt >= attempts {
            return Err(DeliveryError::AttemptsExhausted {
                sink: name.to_owned(),
                attempts: attempt,
                reason,
            });
        }
        let wait = match retry_after {
            Some(asked) => asked.min(policy.max_backoff),
            None => policy.backoff(attempt),
        };
        let remaining = policy.budget.saturating_sub(start.elapsed());
        // Waiting the whole remaining budget would leave no time for the attempt itself.
        if wait >= remaining {
            return Err(budget_error(attempt, reason));
        }
        tracing::warn!(
            sink = name,
            attempt,
            of = attempts,
            wait_ms = wait.as_millis() as u64,
            server_asked_ms = retry_after.map(|d| d.as_millis() as u64),
            reason = %reason,
            "notification not delivered; retrying"
        );
        tokio::time::sleep(wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceiling_doubles_and_caps() {
        let p = RetryPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(1000),
            ..RetryPolicy::default()
        };
        assert_eq!(p.ceiling(1), Duration::from_millis(100));
        assert_eq!(p.ceiling(2), Duration::from_millis(200));
        assert_eq!(p.ceiling(4), Duration::from_millis(800));
        assert_eq!(p.ceiling(5), Duration::from_millis(1000));
        assert_eq!(p.ceiling(100), Duration::from_millis(1000));
        for r in 1..10 {
            assert!(p.backoff(r) <= p.ceiling(r));
        }
    }
}
