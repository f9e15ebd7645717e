//! The values services pass each other about files and scans, typed once: in code as these
//! enums, on the wire as the `coffer.v1` enums, in columns and API.md as their snake_case names.

use coffer_proto::v1 as pb;
use serde::{Deserialize, Serialize};

macro_rules! names {
    ($ty:ident { $($variant:ident => $name:literal / $wire:ident,)* }) => {
        impl $ty {
            /// Every value.
            pub const ALL: &'static [$ty] = &[$($ty::$variant,)*];

            /// The column and API.md form.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($ty::$variant => $name,)*
                }
            }

            /// Parses the column and API.md form.
            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// The wire form.
            pub fn to_wire(self) -> i32 {
                match self {
                    $($ty::$variant => pb::$ty::$wire as i32,)*
                }
            }

            /// Reads the wire form; `None` for unspecified or unknown values.
            pub fn from_wire(v: i32) -> Option<Self> {
                match pb::$ty::try_from(v).ok()? {
                    $(pb::$ty::$wire => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }

        impl TryFrom<String> for $ty {
            type Error = String;

            /// A column value: an unknown one is an error naming it.
            fn try_from(s: String) -> Result<Self, String> {
                Self::parse(&s).ok_or_else(|| format!("not a {}: {s}", stringify!($ty)))
            }
        }

        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

/// What a scan found a file's bytes to be, from best to worst for its owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Clean,
    /// An image classified as not safe for work, and nothing worse: below every other finding.
    Nsfw,
    Sensitive,
    Suspicious,
    Infected,
    /// No engine could finish (after every retry): treated as quarantined.
    Failed,
}

names!(Verdict {
    Clean => "clean" / Clean,
    Nsfw => "nsfw" / Nsfw,
    Sensitive => "sensitive" / Sensitive,
    Suspicious => "suspicious" / Suspicious,
    Infected => "infected" / Infected,
    Failed => "failed" / Failed,
});

/// A file's place in its life; `Trashed` wins over the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileStatus {
    PendingUpload,
    Scanning,
    Available,
    Quarantined,
    Trashed,
}

names!(FileStatus {
    PendingUpload => "pending_upload" / PendingUpload,
    Scanning => "scanning" / Scanning,
    Available => "available" / Available,
    Quarantined => "quarantined" / Quarantined,
    Trashed => "trashed" / Trashed,
});

impl FileStatus {
    /// Where a verdict takes a file: `clean` makes it available, and `nsfw` unless the org's
    /// policy holds it (`hold`); anything else quarantines it.
    pub fn after(verdict: Verdict, hold: bool) -> FileStatus {
        match verdict {
            Verdict::Clean => FileStatus::Available,
            Verdict::Nsfw if !hold => FileStatus::Available,
            _ => FileStatus::Quarantined,
        }
    }
}

/// Where a scan-only request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScanState {
    AwaitingUpload,
    Queued,
    Done,
    /// Never submitted in time; its object is deleted.
    Expired,
}

names!(ScanState {
    AwaitingUpload => "awaiting_upload" / AwaitingUpload,
    Queued => "queued" / Queued,
    Done => "done" / Done,
    Expired => "expired" / Expired,
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_name_and_the_wire() {
        for v in Verdict::ALL {
            assert_eq!(Verdict::parse(v.as_str()), Some(*v));
            assert_eq!(Verdict::from_wire(v.to_wire()), Some(*v));
        }
        for s in FileStatus::ALL {
            assert_eq!(FileStatus::parse(s.as_str()), Some(*s));
            assert_eq!(FileStatus::from_wire(s.to_wire()), Some(*s));
        }
        for s in ScanState::ALL {
            assert_eq!(ScanState::parse(s.as_str()), Some(*s));
            assert_eq!(ScanState::from_wire(s.to_wire()), Some(*s));
        }
        assert_eq!(Verdict::from_wire(0), None, "unspecified: not scanned yet");
        assert_eq!(Verdict::parse("CLEAN"), None);
        assert!(Verdict::Clean < Verdict::Sensitive && Verdict::Infected < Verdict::Failed);
        // `nsfw` ranks below every other finding.
        assert!(Verdict::Clean < Verdict::Nsfw && Verdict::Nsfw < Verdict::Sensitive);
        assert_eq!(
            FileStatus::after(Verdict::Clean, true),
            FileStatus::Available
        );
        assert_eq!(
            FileStatus::after(Verdict::Sensitive, false),
            FileStatus::Quarantined
        );
        // The org's policy decides for `nsfw`: flag leaves it available, quarantine holds it.
        assert_eq!(
            FileStatus::after(Verdict::Nsfw, false),
            FileStatus::Available
        );
        assert_eq!(
            FileStatus::after(Verdict::Nsfw, true),
            FileStatus::Quarantined
        );
    }
}
