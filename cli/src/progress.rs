//! Progress bars on stderr, only for a terminal and without `--quiet` (`ISEC_PROGRESS=always`
//! draws them on any stderr, `never` hides them: scripts and tests that capture stderr).
//!
//! A [`Bar`] clears itself when dropped, so an error, Ctrl-C or an early return never leaves
//! a stale line behind the message that follows. Rate and ETA count only the bytes done
//! since the bar appeared: a resumed job starts at its checkpoint without claiming the
//! earlier run's bytes as its own speed.

use std::io::{IsTerminal, Write};
use std::ops::Deref;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressState, ProgressStyle, TermLike};

/// A progress bar that clears its line when dropped.
pub struct Bar(ProgressBar);

impl Deref for Bar {
    type Target = ProgressBar;
    fn deref(&self) -> &ProgressBar {
        &self.0
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}

/// A bar of `total` bytes (unknown: bytes and rate only), hidden when not wanted.
pub fn bar(total: Option<u64>, quiet: bool, label: &str) -> Bar {
    bar_from(total, 0, quiet, label)
}

/// A bar starting at `start` of `total` bytes (a resumed job): its rate and ETA count only
/// what this run does.
pub fn bar_from(total: Option<u64>, start: u64, quiet: bool, label: &str) -> Bar {
    let forced = std::env::var("ISEC_PROGRESS").ok();
    let target = match forced.as_deref() {
        _ if quiet => None,
        Some("never") => None,
        Some("always") => Some(ProgressDrawTarget::term_like(Box::new(RawStderr))),
        _ if std::io::stderr().is_terminal() => Some(ProgressDrawTarget::stderr()),
        _ => None,
    };
    let Some(target) = target else {
        return Bar(ProgressBar::with_draw_target(total, ProgressDrawTarget::hidden()));
    };
    let template = if total.is_some() {
        "{msg} [{bar:30}] {bytes}/{total_bytes} {run_rate} eta {run_eta}"
    } else {
        "{msg} {bytes} {run_rate}"
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .with_key("run_rate", move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = write!(w, "{}/s", human(run_rate(s, start)));
        })
        .with_key("run_eta", move |s: &ProgressState, w: &mut dyn std::fmt::Write| {
            let _ = w.write_str(&run_eta(s, start));
        })
        .progress_chars("=> ");
    let pb = ProgressBar::with_draw_target(total, target).with_style(style).with_message(label.to_string());
    pb.set_position(start);
    pb.tick();
    Bar(pb)
}

/// Bytes per second done since the bar appeared.
fn run_rate(s: &ProgressState, start: u64) -> f64 {
    rate(s.pos(), start, s.elapsed().as_secs_f64())
}

/// The rate of a run that went from `start` to `pos` in `secs`: what an earlier run did
/// (a resumed job's checkpoint) is not this run's speed.
#[allow(clippy::cast_precision_loss, reason = "a display value")]
fn rate(pos: u64, start: u64, secs: f64) -> f64 {
    if secs < 0.05 { 0.0 } else { pos.saturating_sub(start) as f64 / secs }
}

/// Seconds left at this run's rate (`?` before there is one).
#[allow(clippy::cast_precision_loss, reason = "a display value")]
fn run_eta(s: &ProgressState, start: u64) -> String {
    let rate = run_rate(s, start);
    let left = s.len().unwrap_or(0).saturating_sub(s.pos());
    if rate < 1.0 { "?".into() } else { format!("{}s", (left as f64 / rate).ceil()) }
}

/// `1.5 MiB` and the like.
#[allow(clippy::cast_precision_loss, reason = "a display value")]
fn human(bytes: f64) -> String {
    let mut v = bytes;
    for unit in ["B", "KiB", "MiB", "GiB"] {
        if v < 1024.0 {
            return format!("{v:.1} {unit}");
        }
        v /= 1024.0;
    }
    format!("{v:.1} TiB")
}

/// stderr as a terminal of 80 columns, whatever it is (`ISEC_PROGRESS=always`): the bar's
/// drawing and clearing are written as the ANSI sequences a terminal would get.
#[derive(Debug)]
struct RawStderr;

impl RawStderr {
    fn put(s: &str) -> std::io::Result<()> {
        std::io::stderr().write_all(s.as_bytes())
    }
}

impl TermLike for RawStderr {
    fn width(&self) -> u16 {
        80
    }
    fn move_cursor_up(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Self::put(&format!("\x1b[{n}A")) } else { Ok(()) }
    }
    fn move_cursor_down(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Self::put(&format!("\x1b[{n}B")) } else { Ok(()) }
    }
    fn move_cursor_right(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Self::put(&format!("\x1b[{n}C")) } else { Ok(()) }
    }
    fn move_cursor_left(&self, n: usize) -> std::io::Result<()> {
        if n > 0 { Self::put(&format!("\x1b[{n}D")) } else { Ok(()) }
    }
    fn write_line(&self, s: &str) -> std::io::Result<()> {
        Self::put(&format!("{s}\n"))
    }
    fn write_str(&self, s: &str) -> std::io::Result<()> {
        Self::put(s)
    }
    fn clear_line(&self) -> std::io::Result<()> {
        Self::put("\r\x1b[2K")
    }
    fn flush(&self) -> std::io::Result<()> {
        std::io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resumed_run_counts_only_its_own_bytes() {
        // Resumed at 1 GB, 2 MB done in 2 s: 1 MB/s, not 500 MB/s.
        assert!((rate(1_002_000_000, 1_000_000_000, 2.0) - 1_000_000.0).abs() < 1.0);
        assert!((rate(10, 0, 0.01)).abs() < f64::EPSILON, "no rate before there is one");
        assert!((rate(5, 10, 1.0)).abs() < f64::EPSILON);
        assert_eq!(human(1536.0), "1.5 KiB");
    }
}
