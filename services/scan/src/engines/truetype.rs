//! True type: what a file is by its magic numbers, against what the uploader declared (content
//! type and the name's extension). Only a mismatch that hides an executable is a finding; any
//! other mismatch (a PNG called `.jpg`) is common and harmless.

use super::{Engine, Finding, Verdict};

/// Types told apart by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Detected {
    Pe,
    Elf,
    MachO,
    Script,
    Pdf,
    Zip,
    Ole,
    Png,
    Jpeg,
    Gif,
    Gzip,
    Tar,
    Unknown,
}

impl Detected {
    pub fn as_str(self) -> &'static str {
        match self {
            Detected::Pe => "pe",
            Detected::Elf => "elf",
            Detected::MachO => "mach-o",
            Detected::Script => "script",
            Detected::Pdf => "pdf",
            Detected::Zip => "zip",
            Detected::Ole => "ole2",
            Detected::Png => "png",
            Detected::Jpeg => "jpeg",
            Detected::Gif => "gif",
            Detected::Gzip => "gzip",
            Detected::Tar => "tar",
            Detected::Unknown => "unknown",
        }
    }

    fn is_executable(self) -> bool {
        matches!(
            self,
            Detected::Pe | Detected::Elf | Detected::MachO | Detected::Script
        )
    }
}

/// Reads the type from a file's first bytes (4 KiB are plenty).
pub fn detect(head: &[u8]) -> Detected {
    let starts = |m: &[u8]| head.starts_with(m);
    if starts(b"MZ") && head.len() >= 0x40 {
        let at = u32::from_le_bytes([head[0x3c], head[0x3d], head[0x3e], head[0x3f]]) as usize;
        if head.get(at..at + 4) == Some(b"PE\0\0") {
            return Detected::Pe;
        }
    }
    if starts(b"\x7fELF") {
        return Detected::Elf;
    }
    for m in [
        [0xfe, 0xed, 0xfa, 0xce],
        [0xfe, 0xed, 0xfa, 0xcf],
        [0xce, 0xfa, 0xed, 0xfe],
        [0xcf, 0xfa, 0xed, 0xfe],
    ] {
        if starts(&m) {
            return Detected::MachO;
        }
    }
    // A universal Mach-O; a Java class shares the magic but has a version >= 45 there.
    if starts(&[0xca, 0xfe, 0xba, 0xbe])
        && head.len() >= 8
        && head[4..7] == [0, 0, 0]
        && head[7] < 20
    {
        return Detected::MachO;
    }
    if starts(b"PK\x03\x04") || starts(b"PK\x05\x06") {
        return Detected::Zip;
    }
    if starts(&[0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]) {
        return Detected::Ole;
    }
    if starts(b"\x89PNG\r\n\x1a\n") {
        return Detected::Png;
    }
    if starts(&[0xff, 0xd8, 0xff]) {
        return Detected::Jpeg;
    }
    if starts(b"GIF87a") || starts(b"GIF89a") {
        return Detected::Gif;
    }
    if starts(&[0x1f, 0x8b]) {
        return Detected::Gzip;
    }
    if head.get(257..262) == Some(b"ustar") {
        return Detected::Tar;
    }
    // Magics at offset 0 (and tar's at 257) come first: a tar's first entry name, or a gzip's or
    // zip's file name field, may read `#!` or `%PDF-`, and an archive must still be opened.
    if starts(b"#!") {
        return Detected::Script;
    }
    // A PDF reader takes its header anywhere in the first 1024 bytes.
    if head.len() >= 5
        && head[..head.len().min(1024)]
            .windows(5)
            .any(|w| w == b"%PDF-")
    {
        return Detected::Pdf;
    }
    Detected::Unknown
}

/// Declared types under which an executable is expected, not hidden.
fn declares_executable(content_type: &str, extension: &str) -> bool {
    let ct = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    let ct_exec = matches!(
        ct.as_str(),
        "application/x-msdownload"
            | "application/x-dosexec"
            | "application/vnd.microsoft.portable-executable"
            | "application/x-executable"
            | "application/x-elf"
            | "application/x-mach-binary"
            | "application/x-sharedlib"
            | "application/x-sh"
            | "text/x-shellscript"
            | "text/x-python"
            | "application/x-python-code"
    );
    let ext_exec = matches!(
        extension,
        "exe"
            | "dll"
            | "sys"
            | "scr"
            | "com"
            | "msi"
            | "elf"
            | "so"
            | "bin"
            | "out"
            | "dylib"
            | "app"
            | "sh"
            | "bash"
            | "py"
            | "pl"
            | "rb"
            | ""
    );
    ct_exec && ext_exec
}

/// Compares the detected type with the declared one.
pub fn check(
    head: &[u8],
    content_type: &str,
    extension: &str,
    findings: &mut Vec<Finding>,
) -> Detected {
    let detected = detect(head);
    if detected.is_executable() && !declares_executable(content_type, extension) {
        findings.push(Finding {
            engine: Engine::TrueType,
            signature: format!("hidden-executable:{}", detected.as_str()),
            verdict: Verdict::Suspicious,
        });
    }
    detected
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pe() -> Vec<u8> {
        let mut v = b"MZ".to_vec();
        v.resize(0x3c, 0);
        v.extend_from_slice(&0x80u32.to_le_bytes());
        v.resize(0x80, 0);
        v.extend_from_slice(b"PE\0\0\x64\x86");
        v
    }

    #[test]
    fn detects_by_magic() {
        assert_eq!(detect(&pe()), Detected::Pe);
        assert_eq!(
            detect(b"MZ but not a PE at all, just text that starts oddly ......................."),
            Detected::Unknown
        );
        assert_eq!(detect(b"\x7fELF\x02\x01\x01"), Detected::Elf);
        assert_eq!(detect(b"%PDF-1.4\n"), Detected::Pdf);
        assert_eq!(detect(b"PK\x03\x04rest"), Detected::Zip);
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n...."), Detected::Png);
        assert_eq!(detect(b"#!/bin/sh\necho"), Detected::Script);
        assert_eq!(
            detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52]),
            Detected::Unknown
        );
        assert_eq!(
            detect(&[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2]),
            Detected::MachO
        );
        assert_eq!(detect(b""), Detected::Unknown);
    }

    /// An archive is detected as one whatever the name of its first entry (or a gzip's name
    /// field) reads: `%PDF-` or `#!` there made the scan take a zip for a PDF or a script and
    /// never open it (a private key inside passed as clean).
    #[test]
    fn an_archive_is_an_archive_whatever_its_first_name_reads() {
        use std::io::Write as _;

        use crate::engines::archive::build;
        for name in ["%PDF-1.7.txt", "#!/bin/sh", "a/%PDF-1.4"] {
            let zip = build::zip(&[(name, b"x"), ("id_rsa", b"key")]);
            assert_eq!(detect(&zip), Detected::Zip, "{name}");
            assert_eq!(
                detect(&build::tar_gz(&[(name, b"x")])),
                Detected::Gzip,
                "{name}"
            );
            let mut tar = tar::Builder::new(Vec::new());
            let mut header = tar::Header::new_ustar();
            header.set_path(name).unwrap();
            header.set_size(1);
            header.set_cksum();
            tar.append(&header, &b"x"[..]).unwrap();
            assert_eq!(detect(&tar.into_inner().unwrap()), Detected::Tar, "{name}");
        }
        let mut gz = flate2::GzBuilder::new()
            .filename("%PDF-1.7")
            .write(Vec::new(), flate2::Compression::default());
        gz.write_all(b"x").unwrap();
        assert_eq!(detect(&gz.finish().unwrap()), Detected::Gzip);
        // A PDF's header may still come after a few bytes of something else.
        assert_eq!(detect(b"junk\n%PDF-1.4\n"), Detected::Pdf);
    }

    #[test]
    fn an_executable_under_another_type_is_suspicious() {
        let mut f = Vec::new();
        assert_eq!(check(&pe(), "application/pdf", "pdf", &mut f), Detected::Pe);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].signature, "hidden-executable:pe");
        assert_eq!(f[0].verdict, Verdict::Suspicious);

        let mut f = Vec::new();
        check(
            &pe(),
            "application/vnd.microsoft.portable-executable",
            "exe",
            &mut f,
        );
        assert!(f.is_empty(), "declared as what it is");

        let mut f = Vec::new();
        check(&pe(), "application/x-msdownload", "pdf", &mut f);
        assert_eq!(f.len(), 1, "an .exe type but a .pdf name still hides it");

        let mut f = Vec::new();
        check(b"\x89PNG\r\n\x1a\n....", "image/jpeg", "jpg", &mut f);
        assert!(f.is_empty(), "a harmless mismatch is no finding");
    }
}
