//! CPU time used, from /proc (Linux): on a shared, loaded machine events per CPU-second
//! says more about the code than events per wall-clock second.

/// Clock ticks per second of /proc's utime and stime (USER_HZ, 100 on Linux).
const TICKS: f64 = 100.0;

fn read(path: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(path).ok()?;
    // Fields after the command name (which may hold spaces) in parentheses; utime and
    // stime are fields 14 and 15 of the line, 12 and 13 after the ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user: f64 = fields.next()?.parse().ok()?;
    let system: f64 = fields.next()?.parse().ok()?;
    Some((user + system) / TICKS)
}

/// User + system CPU seconds of this process so far (all its threads), 0 where unknown.
pub(crate) fn process() -> f64 {
    read("/proc/self/stat").unwrap_or(0.0)
}

/// User + system CPU seconds of the calling thread so far, 0 where unknown.
pub(crate) fn thread() -> f64 {
    read("/proc/thread-self/stat").unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    /// Spinning for a while shows up in the thread's and the process's CPU time.
    #[test]
    fn counts_work() {
        let (thread, process) = (super::thread(), super::process());
        let start = std::time::Instant::now();
        let mut x = 0u64;
        while start.elapsed().as_millis() < 300 {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        assert!(super::thread() - thread >= 0.05, "thread CPU did not grow");
        assert!(
            super::process() - process >= 0.05,
            "process CPU did not grow"
        );
    }
}
