//! The run report's chart: the requests answered and their answer times,
//! second by second, drawn as SVG from the engine's timeline, and the notes
//! on what it does not show.

use std::fmt::Write as _;
use std::time::Duration;

use crate::engine::timeline::{Bucket, Timeline};

/// What the chart's reader should know that the chart does not show.
pub(super) fn chart_notes(timeline: &Timeline) -> Vec<String> {
    let mut notes = Vec::new();
    if timeline.width() > 1 {
        notes.push(format!(
            "Each bar covers {} seconds; its height is the mean per second.",
            timeline.width()
        ));
    }
    if timeline.pauses_left_out() > 0 {
        notes.push(format!(
            "The first {} pauses are shaded; {} more are not.",
            timeline.pauses().len(),
            timeline.pauses_left_out()
        ));
    }
    let total = timeline.total();
    if let Some(slowest) = total.max_took() {
        notes.push(format!(
            "The slowest answer took {} ms; the mean was {} ms.",
            ms_text(slowest),
            ms_text(total.mean_took().unwrap_or_default())
        ));
    }
    notes
}

// The chart's geometry, in SVG units.
pub(super) const WIDTH: f64 = 960.0;
pub(super) const LEFT: f64 = 64.0;
pub(super) const RIGHT: f64 = 944.0;
/// The requests panel.
pub(super) const TOP: f64 = 24.0;
pub(super) const BOTTOM: f64 = 224.0;
/// The answer-time panel.
pub(super) const TIME_TOP: f64 = 284.0;
pub(super) const TIME_BOTTOM: f64 = 404.0;
pub(super) const HEIGHT: f64 = 440.0;

/// How many answers of one kind a bucket holds.
pub(super) type Count = fn(&Bucket) -> u32;

/// The series of the requests panel, bottom to top, with their colours
/// (the template's legend uses the same classes).
pub(super) const SERIES: [(&str, Count); 4] = [
    ("success", |b| b.success),
    ("error", |b| b.error),
    ("no-answer", |b| b.no_answer),
    ("throttled", |b| b.throttled),
];

/// The timeline as SVG: answers per second stacked by kind, the engine's
/// rate and its pauses above; the mean and slowest answer time below. With
/// it, what the reader should know of its scales.
pub(super) fn chart(timeline: &Timeline) -> (String, Vec<String>) {
    let mut notes = Vec::new();
    let width = timeline.width() as f64;
    let buckets = timeline.buckets();
    // The chart ends where the sending ended. The bucket it ends in
    // covers only the part the run lasted (half of it at least: a bucket
    // of one answer in its first millisecond is no spike); a run shorter
    // than one bucket is drawn over the whole bucket (two requests are not
    // four a second).
    let end = timeline.span().as_secs_f64();
    let single = buckets.len() <= 1;
    let covers = |i: usize| match single {
        true => width,
        false => (end - i as f64 * width).clamp(width / 2.0, width),
    };
    let last = buckets.len().saturating_sub(1);
    let span = end.max(last as f64 * width + covers(last)).max(1.0);
    let x = |seconds: f64| LEFT + (RIGHT - LEFT) * seconds / span;
    let per_second = |n: u32, i: usize| f64::from(n) / covers(i);

    // The scale follows the answers; the rate joins it unless it is far
    // above them (--rate 100000 would flatten every bar).
    let answers_high = buckets
        .iter()
        .enumerate()
        .map(|(i, b)| per_second(b.answers(), i))
        .fold(0.0, f64::max);
    let rate_high = buckets
        .iter()
        .filter_map(|b| b.rate().flatten())
        .fold(0.0, f64::max);
    let highest = match rate_high <= 2.0 * answers_high {
        true => answers_high.max(rate_high),
        false => answers_high,
    };
    let (top, step) = nice_axis(highest);
    if rate_high > top * 1.05 {
        notes.push(format!(
            "The tool's rate went up to {rate_high:.1} requests/s, above the scale; where it \
             was, its line runs along the top edge."
        ));
    }
    let y = |value: f64| BOTTOM - (BOTTOM - TOP) * (value / top).min(1.05);

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="chart-title"><title id="chart-title">Requests answered per second, and answer times, over the run</title>"#
    );
    // Pauses first, behind everything.
    for (start, length) in timeline.pauses() {
        let (from, to) = (x(start.as_secs_f64()), x((*start + *length).as_secs_f64()));
        let _ = write!(
            svg,
            r#"<rect class="pause" x="{from:.1}" y="{TOP}" width="{:.2}" height="{}"/>"#,
            (to.min(RIGHT) - from).max(0.5),
            BOTTOM - TOP
        );
    }
    axis(&mut svg, (TOP, BOTTOM), top, step, "requests/s", &y);
    // Stacked bars, one path per kind.
    let bar = |i: usize| (x(covers(i)) - x(0.0)).max(0.3);
    let mut base: Vec<f64> = vec![0.0; buckets.len()];
    for (class, value) in SERIES {
        let mut path = String::new();
        for (i, bucket) in buckets.iter().enumerate() {
            let n = value(bucket);
            if n == 0 {
                continue;
            }
            let (low, high) = (base[i], base[i] + per_second(n, i));
            base[i] = high;
            let _ = write!(
                path,
                "M{:.2} {:.2}V{:.2}h{:.2}V{:.2}Z",
                x(i as f64 * width),
                y(low),
                y(high),
                bar(i),
                y(low)
            );
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="{class}" d="{path}"/>"#);
        }
    }
    // The rate, as a step line; carried over buckets with no answer.
    let mut rate_path = String::new();
    let mut last: Option<f64> = None;
    for (i, bucket) in buckets.iter().enumerate() {
        let rate = match bucket.rate() {
            Some(rate) => rate,
            None => last,
        };
        let (left, right) = (x(i as f64 * width), x(i as f64 * width + covers(i)));
        match (rate, last) {
            (Some(rate), Some(_)) => {
                let _ = write!(rate_path, "V{:.2}H{right:.2}", y(rate));
            }
            (Some(rate), None) => {
                let _ = write!(rate_path, "M{left:.2} {:.2}H{right:.2}", y(rate));
            }
            (None, _) => {}
        }
        last = rate;
    }
    if last.is_some() {
        // Carried to the end of the sending.
        let _ = write!(rate_path, "H{:.2}", x(span));
    }
    if !rate_path.is_empty() {
        let _ = write!(svg, r#"<path class="rate" d="{rate_path}"/>"#);
    }

    // Answer times: the scale fits the means and most of the slowest
    // answers; an outlier is drawn at the top edge.
    let mut slowest: Vec<f64> = buckets
        .iter()
        .filter_map(|b| b.max_took())
        .map(millis)
        .collect();
    slowest.sort_by(f64::total_cmp);
    let typical = slowest
        .get(slowest.len().saturating_sub(1) * 95 / 100)
        .copied()
        .unwrap_or(0.0);
    let mean_high = buckets
        .iter()
        .filter_map(|b| b.mean_took())
        .map(millis)
        .fold(0.0, f64::max);
    let (time_top, time_step) = nice_axis(typical.max(mean_high));
    if slowest.last().is_some_and(|ms| *ms > time_top) {
        notes.push(format!(
            "Answers slower than {} ms are drawn at the top edge of the answer times.",
            tick(time_top, time_step)
        ));
    }
    let ty = |ms: f64| TIME_BOTTOM - (TIME_BOTTOM - TIME_TOP) * (ms / time_top).min(1.0);
    axis(
        &mut svg,
        (TIME_TOP, TIME_BOTTOM),
        time_top,
        time_step,
        "answer time, ms",
        &ty,
    );
    for (class, took) in [
        (
            "slowest",
            Bucket::max_took as fn(&Bucket) -> Option<Duration>,
        ),
        ("mean", Bucket::mean_took),
    ] {
        let mut path = String::new();
        let mut drawing = false;
        for (i, bucket) in buckets.iter().enumerate() {
            let Some(ms) = took(bucket).map(millis) else {
                drawing = false;
                continue;
            };
            let centre = x(i as f64 * width + covers(i) / 2.0);
            // A point alone (no answer on either side) is a dot: a line of
            // no length, drawn with round ends.
            let _ = write!(
                path,
                "{}{centre:.2} {:.2}{}",
                if drawing { "L" } else { "M" },
                ty(ms),
                if drawing { "" } else { "h0.01" }
            );
            drawing = true;
        }
        if !path.is_empty() {
            let _ = write!(svg, r#"<path class="{class}" d="{path}"/>"#);
        }
    }
    time_axis(&mut svg, span, &x);
    svg.push_str("</svg>");
    (svg, notes)
}

/// A tick's label: `10`, `2.5`, `0.25`.
pub(super) fn tick(value: f64, step: f64) -> String {
    let decimals = (0..3)
        .find(|d| {
            let scale = 10f64.powi(*d);
            ((step * scale).round() - step * scale).abs() < 1e-9
        })
        .unwrap_or(3) as usize;
    format!("{value:.decimals$}")
}

/// `1234`, or `3.8` under ten milliseconds (as the chart shows them).
pub(super) fn ms_text(duration: Duration) -> String {
    let ms = millis(duration);
    match ms < 10.0 {
        true => format!("{ms:.1}"),
        false => format!("{ms:.0}"),
    }
}

pub(super) fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// A round top for an axis from 0 to above `highest`, and its tick step.
pub(super) fn nice_axis(highest: f64) -> (f64, f64) {
    if !highest.is_finite() || highest <= 0.0 {
        return (1.0, 0.25);
    }
    let rough = highest / 4.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|step| *step >= rough)
        .unwrap_or(10.0 * magnitude);
    ((highest / step).ceil().max(1.0) * step, step)
}

/// The horizontal grid lines and labels of a panel.
pub(super) fn axis(
    svg: &mut String,
    (top, bottom): (f64, f64),
    max: f64,
    step: f64,
    label: &str,
    y: &dyn Fn(f64) -> f64,
) {
    let mut value = 0.0;
    while value <= max + step / 2.0 {
        let at = y(value);
        let text = tick(value, step);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{RIGHT}" y1="{at:.1}" y2="{at:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{text}</text>"#,
            LEFT - 6.0,
            at + 4.0
        );
        value += step;
    }
    let _ = write!(
        svg,
        r#"<text class="label" x="{LEFT}" y="{:.1}">{label}</text>"#,
        top - 8.0
    );
    let _ = write!(
        svg,
        r#"<line class="axis" x1="{LEFT}" x2="{RIGHT}" y1="{bottom}" y2="{bottom}"/>"#
    );
}

/// The time axis under both panels: round ticks, labelled in seconds or as
/// a clock for long runs.
pub(super) fn time_axis(svg: &mut String, span: f64, x: &dyn Fn(f64) -> f64) {
    const STEPS: [f64; 16] = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0,
        21600.0, 43200.0,
    ];
    let step = STEPS
        .iter()
        .copied()
        .find(|step| span / step <= 10.0)
        .unwrap_or(86400.0);
    let mut at = 0.0;
    while at <= span + 1e-9 {
        let px = x(at);
        let label = if span < 120.0 {
            format!("{at:.0} s")
        } else {
            clock(at)
        };
        for (from, to) in [(BOTTOM, BOTTOM + 5.0), (TIME_BOTTOM, TIME_BOTTOM + 5.0)] {
            let _ = write!(
                svg,
                r#"<line class="axis" x1="{px:.1}" x2="{px:.1}" y1="{from}" y2="{to}"/>"#
            );
        }
        for base in [BOTTOM, TIME_BOTTOM] {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{px:.1}" y="{}" text-anchor="middle">{label}</text>"#,
                base + 18.0
            );
        }
        at += step;
    }
}

/// `1:05` or `2:03:05`.
pub(super) fn clock(seconds: f64) -> String {
    let total = seconds.round() as u64;
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::engine::timeline::AnswerKind;

    /// The highest tick of the requests axis the chart drew.
    fn top_tick(svg: &str) -> f64 {
        svg.split(r#"text-anchor="end">"#)
            .skip(1)
            .filter_map(|rest| rest.split('<').next()?.parse::<f64>().ok())
            .fold(0.0, f64::max)
    }

    #[test]
    fn two_requests_in_a_moment_are_not_four_a_second() {
        let started = Instant::now();
        let mut timeline = Timeline::new(started);
        for ms in [1, 5] {
            let at = started + Duration::from_millis(ms);
            timeline.answered(at, Duration::from_millis(1), AnswerKind::Success, None);
        }
        timeline.ended(started + Duration::from_millis(10));
        let (svg, _) = chart(&timeline);
        let top = top_tick(&svg);
        assert!((2.0..4.0).contains(&top), "the scale tops at {top}: {svg}");
    }
}
