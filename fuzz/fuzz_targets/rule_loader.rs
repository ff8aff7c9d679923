//! Arbitrary bytes as a rule file (Keywatch format or gitleaks config), parsed and compiled
//! into a matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(rules) = keywatch_scan::rules::parse_rule_text(text, "fuzz") {
            let _ = keywatch_scan::Matcher::new(rules, false);
        }
    }
});
