//! Stable names parse back to what gave them, and nothing else parses.

use isec_core::copy::{Directive, Sidecar};
use isec_core::scan::ScanClass;

#[test]
fn names_round_trip() {
    for d in [Directive::Copy, Directive::Replace] {
        assert_eq!(Directive::from_name(d.name()), Some(d));
    }
    assert_eq!(Directive::from_name("COPY"), Some(Directive::Copy));
    for k in [Sidecar::Table, Sidecar::Legacy] {
        assert_eq!(Sidecar::from_name(k.name()), Some(k));
    }
    for c in ScanClass::ALL {
        assert_eq!(ScanClass::from_name(c.name()), Some(c));
    }
    assert_eq!(Directive::from_name("copy"), None);
    assert_eq!(Sidecar::from_name("tables"), None);
    assert_eq!(ScanClass::from_name(""), None);
}
