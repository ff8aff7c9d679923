//! Where scan results go. The CLI's collector is one sink; a store writer would be another.

use keywatch_model::{Finding, ScanError, Skipped};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Receives results from many threads at once.
pub trait Sink: Sync {
    fn findings(&self, findings: Vec<Finding>);
    fn error(&self, path: &str, message: String);
    fn skipped(&self, path: &str, reason: String);
    /// One input (file, archive entry, blob) was scanned, `bytes` long.
    fn scanned(&self, bytes: u64);
    fn archive(&self) {}
}

/// Live counters, readable while a scan runs (the progress bar reads them).
#[derive(Debug, Default)]
pub struct Counters {
    pub files: AtomicU64,
    pub bytes: AtomicU64,
    pub findings: AtomicU64,
    pub archives: AtomicU64,
    pub skipped: AtomicU64,
    pub errors: AtomicU64,
}

impl Counters {
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

/// Collects everything in memory.
#[derive(Debug, Default)]
pub struct Collector {
    pub counters: Counters,
    findings: Mutex<Vec<Finding>>,
    errors: Mutex<Vec<ScanError>>,
    skipped: Mutex<Vec<Skipped>>,
}

/// What a [`Collector`] gathered.
#[derive(Debug, Default)]
pub struct Collected {
    pub findings: Vec<Finding>,
    pub errors: Vec<ScanError>,
    pub skipped: Vec<Skipped>,
    pub files: u64,
    pub bytes: u64,
    pub archives: u64,
}

impl Collector {
    pub fn into_collected(self) -> Collected {
        let c = &self.counters;
        Collected {
            files: Counters::get(&c.files),
            bytes: Counters::get(&c.bytes),
            archives: Counters::get(&c.archives),
            findings: self.findings.into_inner().unwrap_or_else(|e| e.into_inner()),
            errors: self.errors.into_inner().unwrap_or_else(|e| e.into_inner()),
            skipped: self.skipped.into_inner().unwrap_or_else(|e| e.into_inner()),
        }
    }
}

impl Sink for Collector {
    fn findings(&self, findings: Vec<Finding>) {
        if findings.is_empty() {
            return;
        }
        self.counters.findings.fetch_add(findings.len() as u64, Ordering::Relaxed);
        self.findings.lock().unwrap_or_else(|e| e.into_inner()).extend(findings);
    }

    fn error(&self, path: &str, message: String) {
        self.counters.errors.fetch_add(1, Ordering::Relaxed);
        self.errors.lock().unwrap_or_else(|e| e.into_inner()).push(ScanError { path: path.to_string(), message });
    }

    fn skipped(&self, path: &str, reason: String) {
        self.counters.skipped.fetch_add(1, Ordering::Relaxed);
        self.skipped.lock().unwrap_or_else(|e| e.into_inner()).push(Skipped { path: path.to_string(), reason });
    }

    fn scanned(&self, bytes: u64) {
        self.counters.files.fetch_add(1, Ordering::Relaxed);
        self.counters.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn archive(&self) {
        self.counters.archives.fetch_add(1, Ordering::Relaxed);
    }
}
