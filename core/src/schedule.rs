//! When a deployment's schedules fall due: cron expressions, intervals and
//! iCalendar recurrence rules, each read in an IANA time zone. Pure: the
//! scheduler (`scheduler.rs`) turns these times into runs.
//!
//! Daylight-saving changes follow ISC cron. A wall-clock time that a change
//! skips (spring forward) fires once, at the moment of the change; a time
//! that happens twice (fall back) fires once, the first time. A cron
//! expression whose hour field is `*` goes by the clock instead: it fires at
//! every matching time that exists, in both passes of a repeated hour.
//! Intervals of whole days keep their wall-clock time across changes;
//! shorter intervals are exact durations from their anchor.

use baton_proto::v1::{CatchUp, ScheduleSpec, Timestamp};
use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use cron::TimeUnitSpec as _;

/// Why a schedule cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("a schedule needs exactly one of `cron`, `interval` or `rrule`")]
    Kind,
    #[error("invalid cron expression `{expression}`: {reason}")]
    Cron { expression: String, reason: String },
    #[error("unknown time zone `{0}` (use an IANA name such as Europe/Berlin)")]
    Timezone(String),
    #[error("an interval must be at least one second")]
    Interval,
    #[error("invalid recurrence rule: {0}")]
    Rrule(String),
}

/// A schedule, parsed and ready to say when it falls due.
#[derive(Debug, Clone)]
pub struct Schedule {
    rule: Rule,
    tz: Tz,
}

#[derive(Debug, Clone)]
enum Rule {
    Cron {
        schedule: Box<cron::Schedule>,
        /// The hour field is `*`: go by the clock across changes.
        by_the_clock: bool,
    },
    /// Exact steps of `every` from `anchor`.
    Elapsed {
        every: Duration,
        anchor: DateTime<Utc>,
    },
    /// Steps of whole days from the anchor's wall-clock time.
    Days {
        days: i64,
        anchor: NaiveDateTime,
        first: DateTime<Utc>,
    },
    Rrule(Box<rrule::RRuleSet>),
}

/// The anchor when a schedule names none: midnight starting 2020, in the
/// schedule's time zone (fixed, so every core computes the same times).
fn default_anchor(tz: Tz) -> DateTime<Utc> {
    let midnight = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).and_then(|d| d.and_hms_opt(0, 0, 0));
    midnight
        .and_then(|m| tz.from_local_datetime(&m).earliest())
        .map_or(DateTime::UNIX_EPOCH, |t| t.with_timezone(&Utc))
}

/// Milliseconds since the epoch as a time.
pub fn instant(at: Timestamp) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.0).unwrap_or(DateTime::UNIX_EPOCH)
}

/// A time as milliseconds since the epoch.
pub fn timestamp(at: DateTime<Utc>) -> Timestamp {
    Timestamp(at.timestamp_millis())
}

impl Schedule {
    pub fn parse(spec: &ScheduleSpec) -> Result<Self, ScheduleError> {
        let tz: Tz =
            spec.timezone.parse().map_err(|_| ScheduleError::Timezone(spec.timezone.clone()))?;
        let anchor = spec.anchor.map_or_else(|| default_anchor(tz), instant);
        let rule = match (&spec.cron, spec.interval_seconds, &spec.rrule) {
            (Some(expression), None, None) => cron_rule(expression)?,
            (None, Some(seconds), None) => {
                let seconds = i64::try_from(seconds).map_err(|_| ScheduleError::Interval)?;
                if seconds < 1 {
                    return Err(ScheduleError::Interval);
                }
                if seconds % 86_400 == 0 {
                    Rule::Days {
                        days: seconds / 86_400,
                        anchor: anchor.with_timezone(&tz).naive_local(),
                        first: anchor,
                    }
                } else {
                    Rule::Elapsed { every: Duration::seconds(seconds), anchor }
                }
            }
            (None, None, Some(text)) => Rule::Rrule(Box::new(rrule_set(text, tz, anchor)?)),
            _ => return Err(ScheduleError::Kind),
        };
        Ok(Self { rule, tz })
    }

    /// The times after `after` up to and including `until`, ascending, at
    /// most `max`.
    pub fn times(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        if max == 0 || until <= after {
            return Vec::new();
        }
        let found = match &self.rule {
            Rule::Cron { schedule, by_the_clock } => {
                self.cron_times(schedule, *by_the_clock, after, until, max)
            }
            Rule::Elapsed { every, anchor } => {
                let every_ms = every.num_milliseconds().max(1);
                let steps = (after - *anchor).num_milliseconds().div_euclid(every_ms) + 1;
                (steps.max(0)..)
                    .map(|k| *anchor + Duration::milliseconds(every_ms.saturating_mul(k)))
                    .take_while(|t| *t <= until)
                    .take(max)
                    .collect()
            }
            Rule::Days { days, anchor, first } => {
                // Start a step early: wall-clock days are not all 24 hours.
                let steps = ((after - *first).num_days().div_euclid(*days) - 1).max(0);
                (steps..)
                    .filter_map(|k| self.at_wall_time(*anchor + Duration::days(days * k)))
                    .skip_while(|t| *t <= after)
                    .take_while(|t| *t <= until)
                    .take(max)
                    .collect()
            }
            Rule::Rrule(set) => {
                let tz = rrule::Tz::Tz(self.tz);
                let limit = u16::try_from(max).unwrap_or(u16::MAX);
                (**set)
                    .clone()
                    .after(after.with_timezone(&tz))
                    .before(until.with_timezone(&tz))
                    .all(limit)
                    .dates
                    .into_iter()
                    .map(|t| t.with_timezone(&Utc))
                    .collect()
            }
        };
        let mut found: Vec<_> = found.into_iter().filter(|t| *t > after && *t <= until).collect();
        found.sort_unstable();
        found.dedup();
        found.truncate(max);
        found
    }

    /// Cron times: the expression is matched against the wall clock, and
    /// each matching wall-clock time is placed in time by the rules above.
    fn cron_times(
        &self,
        schedule: &cron::Schedule,
        by_the_clock: bool,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
        max: usize,
    ) -> Vec<DateTime<Utc>> {
        // Wall-clock times shift by at most a few hours around `after` and
        // `until`; a margin sees a repeated hour whole.
        let margin = Duration::hours(3);
        let start = after.with_timezone(&self.tz).naive_local() - margin;
        let end = until.with_timezone(&self.tz).naive_local() + margin;
        let mut found = Vec::new();
        let mut counted = 0;
        // A repeated hour interleaves its two passes in wall-clock order, so
        // the first `max` times are among the first `2 * max` found.
        for wall in schedule.after(&Utc.from_utc_datetime(&start)) {
            let wall = wall.naive_utc();
            if wall > end || counted >= 2 * max {
                break;
            }
            let placed: Vec<DateTime<Utc>> = match self.tz.from_local_datetime(&wall) {
                LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
                LocalResult::Ambiguous(first, second) if by_the_clock => {
                    vec![first.with_timezone(&Utc), second.with_timezone(&Utc)]
                }
                LocalResult::Ambiguous(first, _) => vec![first.with_timezone(&Utc)],
                LocalResult::None if by_the_clock => Vec::new(),
                LocalResult::None => self.after_gap(wall).into_iter().collect(),
            };
            counted += placed.iter().filter(|t| **t > after).count();
            found.extend(placed);
        }
        found
    }

    /// A wall-clock time placed by the fixed-time rules: the first of two,
    /// or the moment a skipped one was jumped over.
    fn at_wall_time(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&wall) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
            LocalResult::None => self.after_gap(wall),
        }
    }

    /// The moment the clock jumped over `wall`: the first wall-clock minute
    /// after it that exists (changes happen on whole minutes).
    fn after_gap(&self, wall: NaiveDateTime) -> Option<DateTime<Utc>> {
        let minute = wall.with_second(0)?.with_nanosecond(0)?;
        (1..=24 * 60).find_map(|m| {
            self.tz
                .from_local_datetime(&(minute + Duration::minutes(m)))
                .earliest()
                .map(|t| t.with_timezone(&Utc))
        })
    }
}

/// A cron expression in the syntax of the `cron` crate, with Unix cron's
/// five fields and days of the week accepted too.
fn cron_rule(expression: &str) -> Result<Rule, ScheduleError> {
    let failed = |reason: String| ScheduleError::Cron { expression: expression.to_owned(), reason };
    let fields: Vec<&str> = expression.split_whitespace().collect();
    let normalized = match fields.len() {
        // `@daily` and the like.
        1 => expression.trim().to_owned(),
        5 => format!("0 {}", unix_fields(&fields, 4).map_err(failed)?),
        6 | 7 => unix_fields(&fields, 5).map_err(failed)?,
        n => {
            return Err(failed(format!(
                "{n} fields; expected 5 (minute first) or 6-7 (second first, year last)"
            )));
        }
    };
    let schedule: cron::Schedule =
        normalized.parse().map_err(|e: cron::error::Error| failed(e.to_string()))?;
    let by_the_clock = schedule.hours().is_all();
    Ok(Rule::Cron { schedule: Box::new(schedule), by_the_clock })
}

/// The fields joined again, the day-of-week field (at `dow`) read as Unix
/// cron's: 0 to 7, where 0 and 7 are Sunday (the crate counts 1 to 7 from
/// Sunday).
fn unix_fields(fields: &[&str], dow: usize) -> Result<String, String> {
    let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    if let Some(field) = fields.get_mut(dow) {
        *field = unix_days_of_week(field)?;
    }
    Ok(fields.join(" "))
}

fn unix_days_of_week(field: &str) -> Result<String, String> {
    let day = |text: &str| -> Result<String, String> {
        match text.parse::<u8>() {
            Ok(n @ 0..=7) => Ok((n % 7 + 1).to_string()),
            Ok(n) => Err(format!("day of week {n} is out of range 0-7 (0 and 7 are Sunday)")),
            // Names, `*` and `?` mean the same to both.
            Err(_) => Ok(text.to_owned()),
        }
    };
    let items = field.split(',').map(|item| {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (item, None),
        };
        let range = match range.split_once('-') {
            // Unix `x-7` runs through Saturday to Sunday: Sunday is 1 here.
            Some((from, "7")) if step.is_none() => {
                let from = day(from)?;
                if from == "1" { "1-7".to_owned() } else { format!("{from}-7,1") }
            }
            Some((_, "7")) => {
                return Err(
                    "a stepped range of days may not end at 7; end it at 6 and add 0".to_owned()
                );
            }
            Some((from, to)) => format!("{}-{}", day(from)?, day(to)?),
            None => day(range)?,
        };
        Ok(match step {
            Some(step) => format!("{range}/{step}"),
            None => range,
        })
    });
    Ok(items.collect::<Result<Vec<_>, String>>()?.join(","))
}

/// An rrule with a `DTSTART` (the anchor in the schedule's zone when it
/// names none).
fn rrule_set(text: &str, tz: Tz, anchor: DateTime<Utc>) -> Result<rrule::RRuleSet, ScheduleError> {
    let text = text.trim();
    let full = if text.contains("DTSTART") {
        text.to_owned()
    } else {
        let rule =
            if text.starts_with("RRULE:") { text.to_owned() } else { format!("RRULE:{text}") };
        let start = anchor.with_timezone(&tz).format("%Y%m%dT%H%M%S");
        format!("DTSTART;TZID={}:{start}\n{rule}", tz.name())
    };
    full.parse().map_err(|e: rrule::RRuleError| ScheduleError::Rrule(e.to_string()))
}

/// How far ahead the scheduler creates runs: at least `min_runs` and at
/// least `min_ahead`, at most `max_runs` and `max_ahead`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    pub min_runs: usize,
    pub min_ahead: Duration,
    pub max_runs: usize,
    pub max_ahead: Duration,
}

impl Default for Horizon {
    fn default() -> Self {
        Self {
            min_runs: 3,
            min_ahead: Duration::hours(1),
            max_runs: 100,
            max_ahead: Duration::days(100),
        }
    }
}

/// What planning a schedule gives: runs to create, how far it is planned,
/// and when it must be looked at again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    pub create: Vec<DateTime<Utc>>,
    pub planned_until: DateTime<Utc>,
    pub next_look: DateTime<Utc>,
}

impl Schedule {
    /// Plans the schedule at `now`, given that runs exist for its times up
    /// to `planned_until`. Only future times are planned; times missed
    /// while the core was down are `catch_up`'s.
    pub fn plan(&self, planned_until: DateTime<Utc>, now: DateTime<Utc>, horizon: Horizon) -> Plan {
        let limit = now + horizon.max_ahead;
        let planned_until = planned_until.max(now);
        let mut upcoming = self.times(now, planned_until, horizon.max_runs);
        let mut create = Vec::new();
        let enough = |upcoming: &[DateTime<Utc>]| {
            upcoming.len() >= horizon.min_runs
                && upcoming.last().is_some_and(|last| *last >= now + horizon.min_ahead)
        };
        let mut until = planned_until;
        // Candidates a few at a time: most schedules need only a few.
        let mut ask = horizon.min_runs.max(4);
        while !enough(&upcoming) {
            let room = horizon.max_runs.saturating_sub(upcoming.len());
            if room == 0 {
                break;
            }
            let candidates = self.times(until, limit, ask.min(room));
            let exhausted = candidates.len() < ask.min(room);
            for time in candidates {
                upcoming.push(time);
                create.push(time);
                until = time;
                if enough(&upcoming) {
                    break;
                }
            }
            if exhausted && !enough(&upcoming) {
                // No more times before the limit: all of it is planned.
                until = limit;
                break;
            }
            ask *= 4;
        }
        // Look again when fewer than `min_runs` remain or the plan reaches
        // less than `min_ahead` ahead, but not in a busy loop.
        let by_count = upcoming
            .len()
            .checked_sub(horizon.min_runs)
            .and_then(|i| upcoming.get(i))
            .copied()
            .unwrap_or(until);
        let by_reach = until - horizon.min_ahead;
        let next_look = by_count.min(by_reach).max(now + Duration::seconds(1));
        Plan { create, planned_until: until, next_look }
    }
}

/// What to do about times missed while the core was down.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CatchUpPlan {
    /// Missed times that have a run and keep it.
    pub keep: Vec<DateTime<Utc>>,
    /// Missed times whose run is withdrawn.
    pub skip: Vec<DateTime<Utc>>,
    /// Missed times that get a run now.
    pub create: Vec<DateTime<Utc>>,
}

/// Decides the missed times of a schedule: `missed` are all its times in
/// the down window (ascending), `planned` those among them that have a run
/// already; `all` keeps at most `max_runs`, the newest, and none before
/// `oldest`.
pub fn catch_up(
    policy: CatchUp,
    missed: &[DateTime<Utc>],
    planned: &[DateTime<Utc>],
    oldest: DateTime<Utc>,
    max_runs: usize,
) -> CatchUpPlan {
    let wanted: Vec<DateTime<Utc>> = match policy {
        CatchUp::Skip => Vec::new(),
        CatchUp::Latest => missed.last().copied().into_iter().collect(),
        CatchUp::All => {
            let mut recent: Vec<_> = missed.iter().copied().filter(|t| *t >= oldest).collect();
            recent.drain(..recent.len().saturating_sub(max_runs));
            recent
        }
    };
    let mut plan = CatchUpPlan::default();
    for time in planned {
        if wanted.contains(time) { plan.keep.push(*time) } else { plan.skip.push(*time) }
    }
    plan.create = wanted.into_iter().filter(|t| !planned.contains(t)).collect();
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(kind: &str, value: &str, timezone: &str) -> ScheduleSpec {
        let mut spec = ScheduleSpec {
            cron: None,
            interval_seconds: None,
            rrule: None,
            anchor: None,
            timezone: timezone.to_owned(),
            parameters: serde_json::Map::new(),
            active: true,
            catch_up: CatchUp::default(),
        };
        match kind {
            "cron" => spec.cron = Some(value.to_owned()),
            "interval" => spec.interval_seconds = value.parse().ok(),
            _ => spec.rrule = Some(value.to_owned()),
        }
        spec
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    /// The times between two instants, written in the schedule's zone.
    fn local_times(schedule: &str, tz: &str, from: &str, to: &str) -> Vec<String> {
        let zone: Tz = tz.parse().unwrap();
        Schedule::parse(&spec("cron", schedule, tz))
            .unwrap()
            .times(utc(from), utc(to), 100)
            .into_iter()
            .map(|t| t.with_timezone(&zone).format("%m-%d %H:%M %Z").to_string())
            .collect()
    }

    #[test]
    fn a_fixed_time_in_the_skipped_hour_fires_once_when_clocks_go_forward() {
        // Berlin springs forward at 02:00 CET on 29 March 2026 to 03:00 CEST.
        assert_eq!(
            local_times(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-03-27T12:00:00Z",
                "2026-03-30T12:00:00Z"
            ),
            ["03-28 02:30 CET", "03-29 03:00 CEST", "03-30 02:30 CEST"]
        );
        // New York springs forward at 02:00 EST on 8 March 2026.
        assert_eq!(
            local_times(
                "0,30 2 * * *",
                "America/New_York",
                "2026-03-07T12:00:00Z",
                "2026-03-09T12:00:00Z"
            ),
            ["03-08 03:00 EDT", "03-09 02:00 EDT", "03-09 02:30 EDT"]
        );
    }

    #[test]
    fn a_fixed_time_in_the_repeated_hour_fires_once_when_clocks_go_back() {
        // Berlin falls back at 03:00 CEST on 25 October 2026 to 02:00 CET.
        assert_eq!(
            local_times(
                "30 2 * * *",
                "Europe/Berlin",
                "2026-10-23T12:00:00Z",
                "2026-10-26T12:00:00Z"
            ),
            ["10-24 02:30 CEST", "10-25 02:30 CEST", "10-26 02:30 CET"]
        );
        // New York falls back at 02:00 EDT on 1 November 2026 to 01:00 EST.
        assert_eq!(
            local_times(
                "30 1 * * *",
                "America/New_York",
                "2026-10-31T12:00:00Z",
                "2026-11-02T12:00:00Z"
            ),
            ["11-01 01:30 EDT", "11-02 01:30 EST"]
        );
    }

    #[test]
    fn an_hourly_expression_goes_by_the_clock_across_both_changes() {
        assert_eq!(
            local_times(
                "0 * * * *",
                "Europe/Berlin",
                "2026-03-29T00:00:00Z",
                "2026-03-29T02:00:00Z"
            ),
            ["03-29 03:00 CEST", "03-29 04:00 CEST"],
            "02:00 does not exist and is not made up"
        );
        assert_eq!(
            local_times(
                "30 * * * *",
                "America/New_York",
                "2026-11-01T04:00:00Z",
                "2026-11-01T08:00:00Z"
            ),
            ["11-01 00:30 EDT", "11-01 01:30 EDT", "11-01 01:30 EST", "11-01 02:30 EST"],
            "the repeated hour fires in both passes"
        );
    }

    #[test]
    fn five_fields_read_days_of_the_week_as_unix_cron_does() {
        // 2026-11-30 is a Monday.
        let mondays =
            local_times("0 9 * * 1", "UTC", "2026-11-27T00:00:00Z", "2026-12-08T00:00:00Z");
        assert_eq!(mondays, ["11-30 09:00 UTC", "12-07 09:00 UTC"]);
        let weekend =
            local_times("0 9 * * 6-7", "UTC", "2026-11-27T00:00:00Z", "2026-11-30T00:00:00Z");
        assert_eq!(weekend, ["11-28 09:00 UTC", "11-29 09:00 UTC"]);
        let sundays =
            local_times("0 9 * * 0", "UTC", "2026-11-27T00:00:00Z", "2026-12-01T00:00:00Z");
        assert_eq!(sundays, ["11-29 09:00 UTC"]);
        let with_seconds =
            local_times("15 0 9 * * MON", "UTC", "2026-11-27T00:00:00Z", "2026-12-01T00:00:00Z");
        assert_eq!(with_seconds, ["11-30 09:00 UTC"]);
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let error = |s: ScheduleSpec| Schedule::parse(&s).unwrap_err().to_string();
        assert!(
            error(spec("cron", "61 * * * *", "UTC"))
                .contains("invalid cron expression `61 * * * *`")
        );
        assert!(error(spec("cron", "* * *", "UTC")).contains("3 fields"));
        assert!(error(spec("cron", "0 9 * * 8", "UTC")).contains("out of range 0-7"));
        assert!(
            error(spec("cron", "0 9 * * *", "Mars/Olympus"))
                .contains("unknown time zone `Mars/Olympus`")
        );
        assert!(error(spec("interval", "0", "UTC")).contains("at least one second"));
        assert!(error(spec("rrule", "FREQ=SOMETIMES", "UTC")).contains("invalid recurrence rule"));
        let mut both = spec("cron", "* * * * *", "UTC");
        both.interval_seconds = Some(60);
        assert_eq!(error(both), ScheduleError::Kind.to_string());
    }

    #[test]
    fn intervals_step_from_their_anchor() {
        let mut every_90s = spec("interval", "90", "UTC");
        every_90s.anchor = Some(timestamp(utc("2026-01-01T00:00:00Z")));
        let times = Schedule::parse(&every_90s).unwrap().times(
            utc("2026-01-01T00:03:00Z"),
            utc("2026-01-01T00:10:00Z"),
            3,
        );
        assert_eq!(
            times,
            [utc("2026-01-01T00:04:30Z"), utc("2026-01-01T00:06:00Z"), utc("2026-01-01T00:07:30Z")]
        );
    }

    #[test]
    fn daily_intervals_keep_their_wall_clock_time_across_a_change() {
        let mut daily = spec("interval", "86400", "Europe/Berlin");
        daily.anchor = Some(timestamp(utc("2026-03-01T08:00:00Z"))); // 09:00 CET
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let times: Vec<String> = Schedule::parse(&daily)
            .unwrap()
            .times(utc("2026-03-28T00:00:00Z"), utc("2026-03-31T00:00:00Z"), 10)
            .into_iter()
            .map(|t| t.with_timezone(&zone).format("%d %H:%M").to_string())
            .collect();
        assert_eq!(times, ["28 09:00", "29 09:00", "30 09:00"]);
    }

    #[test]
    fn rrules_read_in_the_schedule_s_zone() {
        let rule = spec(
            "rrule",
            "FREQ=WEEKLY;BYDAY=MO,FR;BYHOUR=9;BYMINUTE=0;BYSECOND=0",
            "America/New_York",
        );
        let times = Schedule::parse(&rule).unwrap().times(
            utc("2026-11-27T00:00:00Z"),
            utc("2026-12-05T00:00:00Z"),
            10,
        );
        // Friday 27 November, Monday 30, Friday 4 December, 09:00 EST.
        assert_eq!(
            times,
            [utc("2026-11-27T14:00:00Z"), utc("2026-11-30T14:00:00Z"), utc("2026-12-04T14:00:00Z")]
        );
    }

    #[test]
    fn planning_reaches_the_horizon_and_says_when_to_look_again() {
        let hourly = Schedule::parse(&spec("cron", "0 * * * *", "UTC")).unwrap();
        let now = utc("2026-11-27T10:30:00Z");
        let horizon = Horizon::default();
        let plan = hourly.plan(now, now, horizon);
        // At least three runs and at least an hour ahead.
        assert_eq!(
            plan.create,
            [utc("2026-11-27T11:00:00Z"), utc("2026-11-27T12:00:00Z"), utc("2026-11-27T13:00:00Z")]
        );
        assert_eq!(plan.planned_until, utc("2026-11-27T13:00:00Z"));
        // When 11:00 has passed, two are left.
        assert_eq!(plan.next_look, utc("2026-11-27T11:00:00Z"));
        // Looking again before then plans nothing more.
        let again = hourly.plan(plan.planned_until, utc("2026-11-27T10:45:00Z"), horizon);
        assert!(again.create.is_empty());
        assert_eq!(again.planned_until, plan.planned_until);

        // Every minute: an hour's worth, capped by max_runs.
        let minutely = Schedule::parse(&spec("cron", "* * * * *", "UTC")).unwrap();
        let plan = minutely.plan(now, now, horizon);
        assert_eq!(plan.create.len(), 60);
        let capped = minutely.plan(now, now, Horizon { max_runs: 10, ..horizon });
        assert_eq!(capped.create.len(), 10);

        // A rule that has ended: nothing to plan, all of the window planned.
        let ended = Schedule::parse(&spec(
            "rrule",
            "DTSTART:20200101T000000Z\nRRULE:FREQ=DAILY;COUNT=2",
            "UTC",
        ))
        .unwrap();
        let plan = ended.plan(now, now, horizon);
        assert!(plan.create.is_empty());
        assert_eq!(plan.planned_until, now + horizon.max_ahead);
    }

    #[test]
    fn catch_up_policies_choose_among_the_missed_times() {
        let t = |m: i64| utc("2026-11-27T10:00:00Z") + Duration::minutes(m);
        let missed = [t(1), t(2), t(3)];
        let planned = [t(1), t(2)];
        let skip = catch_up(CatchUp::Skip, &missed, &planned, t(0), 100);
        assert_eq!((skip.keep, skip.skip, skip.create), (vec![], vec![t(1), t(2)], vec![]));
        let latest = catch_up(CatchUp::Latest, &missed, &planned, t(0), 100);
        assert_eq!(
            (latest.keep, latest.skip, latest.create),
            (vec![], vec![t(1), t(2)], vec![t(3)])
        );
        let all = catch_up(CatchUp::All, &missed, &planned, t(0), 100);
        assert_eq!((all.keep, all.skip, all.create), (vec![t(1), t(2)], vec![], vec![t(3)]));
        let bounded = catch_up(CatchUp::All, &missed, &planned, t(2), 100);
        assert_eq!(
            (bounded.keep, bounded.skip, bounded.create),
            (vec![t(2)], vec![t(1)], vec![t(3)])
        );
        let few = catch_up(CatchUp::All, &missed, &[], t(0), 2);
        assert_eq!(few.create, [t(2), t(3)]);
    }
}
