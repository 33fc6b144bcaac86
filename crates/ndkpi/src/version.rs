//! NDKPI versions and the negotiation rule at adapter open
//! (ndkinfo.h `NDK_VERSION`; ndkpi.h, ndkpi.h, ndisndk.h).

use crate::base::{NDIS_STATUS, USHORT};
use crate::status::NDIS_STATUS_BAD_VERSION;

/// `NDK_VERSION`: 4 bytes, align 2, passed by value in some calls (on x64 it
/// travels in one integer register, as this `repr(C)` struct does under
/// `extern "system"`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct NDK_VERSION {
    pub Major: USHORT,
    pub Minor: USHORT,
}

impl NDK_VERSION {
    /// A version from its two parts.
    pub const fn new(major: USHORT, minor: USHORT) -> Self {
        NDK_VERSION {
            Major: major,
            Minor: minor,
        }
    }
}

// ndkinfo.h, ndkpi.h and ndisndk.h define no version macros (no public header confirms it: a project decision
// item 1): the documentation speaks of literal {Major, Minor} pairs, so these
// names are ndkrs's own.

/// NDKPI 1.1 (Windows Server 2012, NDIS 6.30).
pub const NDK_VERSION_1_1: NDK_VERSION = NDK_VERSION::new(1, 1);
/// NDKPI 1.2 (Windows Server 2012 R2, NDIS 6.40): adds NdkGetCqResultsEx,
/// NdkSendAndInvalidate and NDK_OP_FLAG_DEFER.
pub const NDK_VERSION_1_2: NDK_VERSION = NDK_VERSION::new(1, 2);
/// NDKPI 2.1 (Windows Server 2022): adds NdkCompleteConnectEx, NdkAcceptEx and
/// the disconnect-event-ex callback.
///
/// UNCONFIRMED: the documentation says "NDKPI 2.1" but no page or header seen
/// gives its `NDK_VERSION` encoding; `{2, 1}` is the natural reading
/// (ndkpi.h, no public header confirms it: a project decision).
pub const NDK_VERSION_2_1: NDK_VERSION = NDK_VERSION::new(2, 1);

/// Negotiates the version at `OpenNDKAdapterHandler` time.
///
/// The opener's `requested` version carries the major version it speaks and
/// the lowest minor it accepts. `supported` lists, per major version the
/// provider implements, the highest minor it implements (minor versions are
/// strict supersets of their predecessors). The rule (documentation of
/// OPEN_NDK_ADAPTER_HANDLER, ndisndk.h):
///
/// * a major the provider does not implement: `NDIS_STATUS_BAD_VERSION`;
/// * a requested minor above the provider's highest for that major:
///   `NDIS_STATUS_BAD_VERSION`;
/// * otherwise the adapter operates at the provider's highest minor for that
///   major, which it reports in `NDK_ADAPTER_INFO.Version` and every object
///   header.
pub fn negotiate_version(
    requested: NDK_VERSION,
    supported: &[NDK_VERSION],
) -> Result<NDK_VERSION, NDIS_STATUS> {
    supported
        .iter()
        .copied()
        .filter(|s| s.Major == requested.Major && requested.Minor <= s.Minor)
        .max()
        .ok_or(NDIS_STATUS_BAD_VERSION)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ONE_TWO: &[NDK_VERSION] = &[NDK_VERSION_1_2];
    const BOTH: &[NDK_VERSION] = &[NDK_VERSION_1_2, NDK_VERSION_2_1];

    #[test]
    fn same_major_lower_or_equal_minor_operates_at_highest_minor() {
        assert_eq!(
            negotiate_version(NDK_VERSION_1_1, ONE_TWO),
            Ok(NDK_VERSION_1_2)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION_1_2, ONE_TWO),
            Ok(NDK_VERSION_1_2)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION::new(1, 0), ONE_TWO),
            Ok(NDK_VERSION_1_2)
        );
    }

    #[test]
    fn higher_minor_is_refused() {
        assert_eq!(
            negotiate_version(NDK_VERSION::new(1, 3), ONE_TWO),
            Err(NDIS_STATUS_BAD_VERSION)
        );
    }

    #[test]
    fn unknown_major_is_refused() {
        assert_eq!(
            negotiate_version(NDK_VERSION_2_1, ONE_TWO),
            Err(NDIS_STATUS_BAD_VERSION)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION::new(0, 9), BOTH),
            Err(NDIS_STATUS_BAD_VERSION)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION::new(3, 0), BOTH),
            Err(NDIS_STATUS_BAD_VERSION)
        );
    }

    #[test]
    fn each_major_negotiates_within_itself() {
        assert_eq!(
            negotiate_version(NDK_VERSION_1_1, BOTH),
            Ok(NDK_VERSION_1_2)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION::new(2, 0), BOTH),
            Ok(NDK_VERSION_2_1)
        );
        assert_eq!(
            negotiate_version(NDK_VERSION_2_1, BOTH),
            Ok(NDK_VERSION_2_1)
        );
    }

    #[test]
    fn nothing_supported_refuses_everything() {
        assert_eq!(
            negotiate_version(NDK_VERSION_1_1, &[]),
            Err(NDIS_STATUS_BAD_VERSION)
        );
    }

    #[test]
    fn exhaustive_small_grid_matches_the_rule() {
        // Every requested {major, minor} in a grid against a two-major provider,
        // compared with the rule written out longhand.
        for major in 0..4u16 {
            for minor in 0..5u16 {
                let got = negotiate_version(NDK_VERSION::new(major, minor), BOTH);
                let want = match major {
                    1 if minor <= 2 => Ok(NDK_VERSION_1_2),
                    2 if minor <= 1 => Ok(NDK_VERSION_2_1),
                    _ => Err(NDIS_STATUS_BAD_VERSION),
                };
                assert_eq!(got, want, "requested {{{major}, {minor}}}");
            }
        }
    }
}
