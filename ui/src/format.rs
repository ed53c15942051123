//! Dates and times as people read them, in the local time zone (through JavaScript's `Date`).

use crate::state::Status;
use js_sys::Date;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];
const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// `s` wrapped in FIRST STRONG ISOLATE … POP DIRECTIONAL ISOLATE, for user-supplied text put
/// into a plain string next to other text (labels, titles, sentences): its direction cannot
/// reorder what is around it. In markup, wrap such text in `<bdi>` (or give its own element
/// `dir="auto"`) instead.
pub fn isolate(s: &str) -> String {
    format!("\u{2068}{s}\u{2069}")
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    Date::now() as i64
}

fn date(ts: i64) -> Date {
    Date::new(&(ts as f64).into())
}

/// A number that is the same for all times of one local calendar day.
pub fn day_key(ts: i64) -> i64 {
    let d = date(ts);
    i64::from(d.get_full_year()) * 10_000 + i64::from(d.get_month()) * 100 + i64::from(d.get_date())
}

/// Local days between two times (calendar days, not 24-hour spans).
fn days_between(earlier: i64, later: i64) -> i64 {
    let midnight = |ts: i64| {
        let d = date(ts);
        Date::new_with_year_month_day(d.get_full_year(), d.get_month() as i32, d.get_date() as i32)
            .get_time()
    };
    ((midnight(later) - midnight(earlier)) / 86_400_000.0).round() as i64
}

/// "14:05".
pub fn time_of_day(ts: i64) -> String {
    let d = date(ts);
    format!("{:02}:{:02}", d.get_hours(), d.get_minutes())
}

/// "14:05:09".
pub fn time_of_day_seconds(ts: i64) -> String {
    let d = date(ts);
    format!(
        "{:02}:{:02}:{:02}",
        d.get_hours(),
        d.get_minutes(),
        d.get_seconds()
    )
}

/// "Today", "Yesterday", "Monday, Mar 3", or "Mar 3, 2024" for other years.
pub fn day_label(ts: i64, now: i64) -> String {
    let d = date(ts);
    let month = MONTHS[d.get_month() as usize % 12];
    match days_between(ts, now) {
        0 => "Today".into(),
        1 => "Yesterday".into(),
        _ if d.get_full_year() == date(now).get_full_year() => format!(
            "{}, {} {}",
            WEEKDAYS[d.get_day() as usize % 7],
            month,
            d.get_date()
        ),
        _ => format!("{} {}, {}", month, d.get_date(), d.get_full_year()),
    }
}

/// Compact time for lists: "14:05" today, "Yesterday", "Mon" this week, else "Mar 3".
pub fn short_time(ts: i64, now: i64) -> String {
    let d = date(ts);
    match days_between(ts, now) {
        0 => time_of_day(ts),
        1 => "Yesterday".into(),
        2..=6 => WEEKDAYS[d.get_day() as usize % 7][..3].to_string(),
        _ => format!("{} {}", MONTHS[d.get_month() as usize % 12], d.get_date()),
    }
}

/// Full date and time for tooltips.
pub fn full_time(ts: i64, now: i64) -> String {
    format!("{} at {}", day_label(ts, now), time_of_day(ts))
}

/// "Online", "Last seen 5 min ago", "Offline".
pub fn presence_text(status: Status, last_seen: Option<i64>, now: i64) -> String {
    match status {
        Status::Online => return "Online".into(),
        Status::Unknown => return "Status unknown".into(),
        Status::Offline => {}
    }
    let Some(seen) = last_seen else {
        return "Offline".into();
    };
    let minutes = (now - seen).max(0) / 60_000;
    match minutes {
        0 => "Last seen just now".into(),
        1..=59 => format!("Last seen {minutes} min ago"),
        60..=1439 => format!("Last seen {} h ago", minutes / 60),
        _ => match day_label(seen, now).as_str() {
            "Yesterday" => "Last seen yesterday".into(),
            label => format!("Last seen {label}"),
        },
    }
}
