//! When a recurring job fires next: 5-field cron expressions evaluated in an IANA time zone, and fixed
//! intervals. Invalid expressions and time zones are refused when the job is set, with a clear error.

use std::str::FromStr;

use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use tern_proto::ClientError;

use crate::storage::schedules::Repeat;

/// Shortest interval of an interval job (RivetKit's minimum).
pub const MIN_INTERVAL_MS: i64 = 5_000;

fn invalid_cron(expression: &str, why: impl std::fmt::Display) -> ClientError {
    ClientError::new("schedule", "invalid_cron", 400, format!("Invalid cron expression '{expression}': {why}"))
}

/// Checks a cron job's expression (exactly five fields) and time zone, or an interval's length.
pub fn validate(repeat: &Repeat) -> Result<(), ClientError> {
    match repeat {
        Repeat::Once => Ok(()),
        Repeat::Every { interval_ms } if *interval_ms < MIN_INTERVAL_MS => Err(ClientError::new(
            "schedule",
            "invalid_interval",
            400,
            format!("An interval must be at least {MIN_INTERVAL_MS} ms, not {interval_ms}"),
        )),
        Repeat::Every { .. } => Ok(()),
        Repeat::Cron { expression, timezone } => {
            let fields = expression.split_whitespace().count();
            if fields != 5 {
                return Err(invalid_cron(expression, format!("expected 5 fields, found {fields}")));
            }
            Cron::from_str(expression).map_err(|e| invalid_cron(expression, e))?;
            Tz::from_str(timezone).map_err(|_| {
                ClientError::new("schedule", "invalid_timezone", 400, format!("Unknown time zone '{timezone}'"))
            })?;
            Ok(())
        }
    }
}

/// The first fire time strictly after `after_ms` (ms since the epoch); `None` for one-shot events or an
/// expression that never matches again.
pub fn next_after(repeat: &Repeat, after_ms: i64) -> Option<i64> {
    match repeat {
        Repeat::Once => None,
        Repeat::Every { interval_ms } => Some(after_ms + interval_ms),
        Repeat::Cron { expression, timezone } => {
            let cron = Cron::from_str(expression).ok()?;
            let tz = Tz::from_str(timezone).ok()?;
            // Whole seconds: cron matches fall on whole minutes, and a match must be strictly later than `after`.
            let after: DateTime<Utc> = Utc.timestamp_opt(after_ms.div_euclid(1000), 0).single()?;
            let next = cron.find_next_occurrence(&after.with_timezone(&tz), false).ok()?;
            Some(next.timestamp_millis())
        }
    }
}

/// The next fire of a recurring job that was due at `due_ms` and fired at `now_ms`: intervals keep their phase
/// (missed periods are skipped, not replayed), cron jobs take the next match after now.
pub fn next_fire(repeat: &Repeat, due_ms: i64, now_ms: i64) -> Option<i64> {
    match repeat {
        Repeat::Every { interval_ms } => {
            let missed = (now_ms - due_ms).max(0) / interval_ms;
            Some(due_ms + (missed + 1) * interval_ms)
        }
        other => next_after(other, now_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expression: &str, timezone: &str) -> Repeat {
        Repeat::Cron { expression: expression.into(), timezone: timezone.into() }
    }

    #[test]
    fn cron_expressions_are_checked() {
        assert!(validate(&cron("*/5 * * * *", "UTC")).is_ok());
        assert!(validate(&cron("0 9 * * MON-FRI", "Europe/Paris")).is_ok());
        for bad in ["* * * *", "0 0 * * * *", "61 * * * *", "nonsense"] {
            assert_eq!(validate(&cron(bad, "UTC")).unwrap_err().qualified_code(), "schedule.invalid_cron", "{bad}");
        }
        assert_eq!(
            validate(&cron("* * * * *", "Mars/Olympus")).unwrap_err().qualified_code(),
            "schedule.invalid_timezone"
        );
        assert_eq!(
            validate(&Repeat::Every { interval_ms: 10 }).unwrap_err().qualified_code(),
            "schedule.invalid_interval"
        );
    }

    #[test]
    fn next_cron_fire_honours_the_time_zone() {
        // 2026-01-15 12:00:00 UTC. At 09:00 in New York (UTC-5 in January) is 14:00 UTC the same day.
        let noon_utc = 1_768_478_400_000;
        let next = next_after(&cron("0 9 * * *", "America/New_York"), noon_utc).unwrap();
        assert_eq!(next, noon_utc + 2 * 3_600_000);
        let next_utc = next_after(&cron("0 9 * * *", "UTC"), noon_utc).unwrap();
        assert_eq!(next_utc, noon_utc + 21 * 3_600_000);
        let minutely = next_after(&cron("* * * * *", "UTC"), noon_utc + 1_234).unwrap();
        assert_eq!(minutely, noon_utc + 60_000, "matches fall on whole minutes, strictly later");
    }

    #[test]
    fn intervals_skip_missed_periods_and_keep_their_phase() {
        let every = Repeat::Every { interval_ms: 10_000 };
        assert_eq!(next_fire(&every, 100_000, 100_500), Some(110_000));
        assert_eq!(next_fire(&every, 100_000, 135_000), Some(140_000), "three missed periods are not replayed");
    }
}
