//! The textual IR parser never panics, and what parses round-trips exactly.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(g) = smelt::ir::text::parse(text) {
        let printed = smelt::ir::text::print(&g);
        let again = smelt::ir::text::parse_with(&printed, Some(g.store())).expect("printed IR parses");
        assert_eq!(smelt::ir::text::print(&again), printed);
    }
});
