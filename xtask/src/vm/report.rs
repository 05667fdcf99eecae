//! What one kernel's run printed, read back: each test's result, each
//! binary's exit status, the feature probe's line and the verifier's
//! processed-instruction count per program.

use std::fmt::Write as _;

#[derive(Default, Debug)]
pub struct Report {
    pub kernel: String,
    /// (test name, "ok" | "FAILED" | "ignored").
    pub tests: Vec<(String, String)>,
    /// (binary, exit status) of binaries that exited non-zero.
    pub failed_binaries: Vec<(String, String)>,
    /// `gw_connect4=1171/3416B …`: processed instructions / translated size.
    pub verifier: Option<String>,
    pub probe: Option<String>,
    /// The guest reached its end (else it crashed or timed out).
    pub finished: bool,
}

impl Report {
    pub fn read(output: &str) -> Self {
        let mut r = Report::default();
        // A test whose verdict comes on a later line (its output, shown with
        // --nocapture, follows `test NAME ... `).
        let mut pending: Option<String> = None;
        for line in output.lines() {
            let line = strip_ansi(line.trim_end_matches('\r'));
            let line = line.as_str();
            if let Some(i) = line.find("xtask-vm: kernel ") {
                // The console may run it on after the firmware's escapes.
                r.kernel = line[i + "xtask-vm: kernel ".len()..].to_owned();
            } else if let Some(rest) = line.strip_prefix("xtask-vm: exit ") {
                let mut parts = rest.split_whitespace();
                if let (Some(bin), Some(code)) = (parts.next(), parts.next())
                    && code != "0"
                {
                    r.failed_binaries.push((bin.to_owned(), code.to_owned()));
                }
            } else if line == "xtask-vm: done" {
                r.finished = true;
            } else if let Some(rest) = line.strip_prefix("test ")
                && let Some((name, verdict)) = rest.split_once(" ... ")
            {
                match verdict.trim() {
                    v @ ("ok" | "FAILED" | "ignored") => r.tests.push((name.to_owned(), v.to_owned())),
                    _ => pending = Some(name.to_owned()),
                }
            } else if let Some(name) = pending.as_ref()
                && matches!(line.trim(), "ok" | "FAILED" | "ignored")
            {
                r.tests.push((name.clone(), line.trim().to_owned()));
                pending = None;
            } else if let Some(i) = line.find("programs=")
                && line.contains("verifier: processed instructions")
                && r.verifier.is_none()
            {
                r.verifier = Some(line[i + "programs=".len()..].trim().to_owned());
            } else if line.contains("kernel features probed") && r.probe.is_none() {
                r.probe = line.find("kernel features probed").map(|i| line[i..].trim().to_owned());
            }
        }
        if let Some(name) = pending {
            r.tests.push((name, "no verdict".to_owned()));
        }
        r
    }

    pub fn passed(&self) -> bool {
        self.finished && self.failed_binaries.is_empty() && !self.tests.is_empty() && self.tests.iter().all(|(_, v)| v != "FAILED" && v != "no verdict")
    }

    /// The note for one kernel: results, then the verifier's counts.
    pub fn render(&self, leg: &str) -> String {
        let mut s = String::new();
        let ok = self.tests.iter().filter(|(_, v)| v == "ok").count();
        let _ = writeln!(s, "kernel {leg}: {} ({ok}/{} tests passed{})", self.kernel, self.tests.len(), if self.finished { "" } else { "; the run did not finish" });
        for (name, verdict) in &self.tests {
            let _ = writeln!(s, "  {verdict:7} {name}");
        }
        for (bin, code) in &self.failed_binaries {
            let _ = writeln!(s, "  binary {bin} exited {code}");
        }
        if let Some(p) = &self.probe {
            let _ = writeln!(s, "  probe: {p}");
        }
        match &self.verifier {
            Some(v) => {
                let _ = writeln!(s, "  verifier (processed instructions / translated bytes):");
                for prog in v.split_whitespace() {
                    let _ = writeln!(s, "    {prog}");
                }
            }
            None => {
                let _ = writeln!(s, "  verifier: no count printed");
            }
        }
        s
    }
}

/// The line without terminal colour sequences (`ESC [ … letter`).
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
