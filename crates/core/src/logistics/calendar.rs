//! Days, calendars and the dispatch-slot search: pure arithmetic on day numbers.
//!
//! A day is a number of days since 1970-01-01 in a warehouse's local time (its fixed UTC
//! offset). A warehouse dispatches on its working days; an order paid before the day's cut-off
//! can leave that day, one paid after it leaves on the next working day, and a day takes at most
//! its capacity in parcels.

pub const DAY_MS: u64 = 86_400_000;
const MINUTE_MS: i64 = 60_000;

/// The local day and minute of the day at `at_ms` (UTC) for a UTC offset in minutes.
pub fn local_day_and_minute(at_ms: u64, utc_offset_minutes: i16) -> (u32, u16) {
    let local = at_ms as i64 + i64::from(utc_offset_minutes) * MINUTE_MS;
    let local = local.max(0) as u64;
    let day = (local / DAY_MS).min(u64::from(u32::MAX)) as u32;
    let minute = ((local % DAY_MS) / MINUTE_MS as u64) as u16;
    (day, minute)
}

/// When a local day ends, in UTC milliseconds.
pub fn day_end_ms(day: u32, utc_offset_minutes: i16) -> u64 {
    let end = (i64::from(day) + 1) * DAY_MS as i64 - i64::from(utc_offset_minutes) * MINUTE_MS;
    end.max(0) as u64
}

/// Day 0 (1970-01-01) was a Thursday. Weekdays count from Monday = 0.
pub fn weekday(day: u32) -> u8 {
    ((day + 3) % 7) as u8
}

/// A calendar: weekdays closed (bit 0 Monday .. bit 6 Sunday) and closed dates.
#[derive(Clone, Copy, Debug)]
pub struct Calendar<'a> {
    pub closed_weekdays: u8,
    /// Sorted, no duplicates.
    pub closed_days: &'a [u32],
}

impl Calendar<'_> {
    pub fn is_working(&self, day: u32) -> bool {
        self.closed_weekdays & (1 << weekday(day)) == 0 && self.closed_days.binary_search(&day).is_err()
    }

    /// The first working day at or after `day`, within `horizon` days; `None` if every day is
    /// closed (a calendar with all seven weekdays closed is refused when created).
    pub fn next_working(&self, day: u32, horizon: u32) -> Option<u32> {
        (day..day.saturating_add(horizon)).find(|&d| self.is_working(d))
    }
}

/// The first day a parcel paid at local `(day, minute)` can leave: today if it is a working day
/// and before the cut-off, else the next working day.
pub fn earliest_dispatch(
    calendar: &Calendar,
    day: u32,
    minute: u16,
    cutoff_minute: u16,
    horizon: u32,
) -> Option<u32> {
    if minute < cutoff_minute && calendar.is_working(day) {
        return Some(day);
    }
    calendar.next_working(day + 1, horizon)
}

/// The first working day at or after `from` whose booked count leaves room for one more
/// parcel, looking at most `horizon` days ahead.
pub fn first_day_with_room(
    calendar: &Calendar,
    from: u32,
    capacity: u32,
    horizon: u32,
    booked: impl Fn(u32) -> u32,
) -> Option<u32> {
    let end = from.saturating_add(horizon);
    let mut day = calendar.next_working(from, horizon)?;
    while day < end {
        if booked(day) < capacity {
            return Some(day);
        }
        day = calendar.next_working(day + 1, horizon)?;
    }
    None
}

/// The civil date of a day number (Howard Hinnant's `civil_from_days`), as `YYYY-MM-DD`.
pub fn date_string(day: u32) -> String {
    let z = i64::from(day) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

/// The day number of a civil date `YYYY-MM-DD` (Hinnant's `days_from_civil`).
pub fn parse_date(text: &str) -> Option<u32> {
    let mut parts = text.splitn(3, '-');
    let y: i64 = parts.next()?.parse().ok()?;
    let m: i64 = parts.next()?.parse().ok()?;
    let d: i64 = parts.next()?.parse().ok()?;
    if !(1970..=9999).contains(&y) || !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return None;
    }
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let day = era * 146_097 + doe - 719_468;
    let day = u32::try_from(day).ok()?;
    (date_string(day) == text).then_some(day)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn dates_round_trip_and_known_days() {
        assert_eq!(date_string(0), "1970-01-01");
        assert_eq!(weekday(0), 3, "1970-01-01 was a Thursday");
        let singles_day = parse_date("2026-11-11").expect("a date");
        assert_eq!(date_string(singles_day), "2026-11-11");
        assert_eq!(weekday(singles_day), 2, "2026-11-11 is a Wednesday");
        assert_eq!(parse_date("2026-02-30"), None);
        assert_eq!(parse_date("2026-1-1"), None);
    }

    #[test]
    fn the_cut_off_decides_today_or_the_next_working_day() {
        let calendar = Calendar { closed_weekdays: 1 << 6, closed_days: &[] }; // Sundays closed.
        let wednesday = parse_date("2026-11-11").expect("a date");
        assert_eq!(earliest_dispatch(&calendar, wednesday, 959, 960, 30), Some(wednesday));
        assert_eq!(earliest_dispatch(&calendar, wednesday, 960, 960, 30), Some(wednesday + 1));
        let saturday = wednesday + 3;
        assert_eq!(
            earliest_dispatch(&calendar, saturday, 1_000, 960, 30),
            Some(saturday + 2),
            "Sunday is closed"
        );
    }

    #[test]
    fn a_utc_offset_moves_the_local_day() {
        let day = parse_date("2026-11-11").expect("a date");
        let midnight_beijing = u64::from(day) * DAY_MS - 8 * 3_600_000;
        assert_eq!(local_day_and_minute(midnight_beijing, 480), (day, 0));
        assert_eq!(local_day_and_minute(midnight_beijing, 0), (day - 1, 16 * 60));
        assert_eq!(day_end_ms(day, 480), midnight_beijing + DAY_MS);
    }

    proptest! {
        /// The slot found is a working day with room, and no earlier working day had room.
        #[test]
        fn the_first_day_with_room_is_the_first(
            from in 20_000u32..20_100,
            capacity in 1u32..5,
            booked in proptest::collection::vec(0u32..6, 60),
            closed_weekdays in 0u8..127,
        ) {
            let calendar = Calendar { closed_weekdays, closed_days: &[] };
            let count = |d: u32| booked.get((d - from) as usize).copied().unwrap_or(0);
            let found = first_day_with_room(&calendar, from, capacity, 60, count);
            let expected = (from..from + 60).find(|&d| calendar.is_working(d) && count(d) < capacity);
            prop_assert_eq!(found, expected);
        }

        #[test]
        fn every_day_round_trips(day in 0u32..2_932_896) {
            prop_assert_eq!(parse_date(&date_string(day)), Some(day));
        }
    }
}
