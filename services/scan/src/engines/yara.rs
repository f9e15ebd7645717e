//! The YARA-X ruleset: the rules shipped in `rules/` (compiled into the binary), plus an optional
//! directory of the operator's own `.yar` files. Rules compile once at start-up; a rule that does
//! not compile stops start-up, naming the rule. Every rule must say what it means for the
//! verdict in its `verdict` meta.

use std::path::Path;

use sha2::{Digest as _, Sha256};

use super::{Engine, Finding, Verdict};

const SHIPPED: &[(&str, &str)] = &[("coffer.yar", include_str!("../../rules/coffer.yar"))];
const SHIPPED_VERSION: &str = include_str!("../../rules/VERSION");

#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("YARA rule `{rule}` in {origin} does not compile: {message}")]
    Compile {
        origin: String,
        rule: String,
        message: String,
    },
    #[error("YARA rule `{rule}` has no valid `verdict` meta (\"infected\" or \"suspicious\")")]
    NoVerdict { rule: String },
    #[error("reading the rules directory {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// Compiled rules and the version that results record.
pub struct Ruleset {
    rules: yara_x::Rules,
    version: String,
}

impl std::fmt::Debug for Ruleset {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ruleset")
            .field("version", &self.version)
            .finish_non_exhaustive()
    }
}

/// The shipped rule files, `(file name, text)`: for tools that run the same rules elsewhere (the
/// benchmark against the `yara` command).
pub fn shipped_sources() -> &'static [(&'static str, &'static str)] {
    SHIPPED
}

impl Ruleset {
    /// Compiles the shipped rules and every `*.yar` file of `extra_dir`, in name order.
    pub fn load(extra_dir: Option<&Path>) -> Result<Ruleset, RulesError> {
        let mut sources: Vec<(String, String)> = SHIPPED
            .iter()
            .map(|(n, s)| ((*n).to_owned(), (*s).to_owned()))
            .collect();
        if let Some(dir) = extra_dir {
            let read = |e| RulesError::Read {
                path: dir.display().to_string(),
                source: e,
            };
            let mut names: Vec<_> = std::fs::read_dir(dir)
                .map_err(read)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "yar" || x == "yara"))
                .collect();
            names.sort();
            for p in names {
                let text = std::fs::read_to_string(&p).map_err(read)?;
                sources.push((p.display().to_string(), text));
            }
        }
        Self::compile(&sources, SHIPPED_VERSION.trim())
    }

    /// Compiles `(origin, text)` sources; the version is `base+<hash of the sources>` so any
    /// change of a rule, shipped or local, changes it.
    pub fn compile(sources: &[(String, String)], base: &str) -> Result<Ruleset, RulesError> {
        let mut compiler = yara_x::Compiler::new();
        let mut hash = Sha256::new();
        for (origin, text) in sources {
            hash.update(origin.as_bytes());
            hash.update([0]);
            hash.update(text.as_bytes());
            hash.update([0]);
            if let Err(e) =
                compiler.add_source(yara_x::SourceCode::from(text.as_str()).with_origin(origin))
            {
                return Err(RulesError::Compile {
                    origin: origin.clone(),
                    rule: failing_rule(text),
                    message: e.to_string(),
                });
            }
        }
        let rules = compiler.build();
        for rule in rules.iter() {
            let verdict = rule.metadata().find_map(|(k, v)| match (k, v) {
                ("verdict", yara_x::MetaValue::String(s)) => Some(s),
                _ => None,
            });
            if !matches!(verdict, Some("infected" | "suspicious")) {
                return Err(RulesError::NoVerdict {
                    rule: rule.identifier().to_owned(),
                });
            }
        }
        let digest = hash.finalize();
        let version = format!("{base}+{}", &coffer_kit::hex::encode(&digest)[..12]);
        Ok(Ruleset { rules, version })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    /// The compiled rules as bytes (native code included), for the engine children: they are
    /// only ever read back from what this process wrote, never from anyone else's bytes.
    pub fn serialize(&self) -> Result<Vec<u8>, yara_x::errors::SerializationError> {
        self.rules.serialize()
    }

    /// Rules from [`Ruleset::serialize`]'s bytes, under the version they were compiled with.
    pub fn deserialize(
        bytes: &[u8],
        version: String,
    ) -> Result<Ruleset, yara_x::errors::SerializationError> {
        Ok(Ruleset {
            rules: yara_x::Rules::deserialize(bytes)?,
            version,
        })
    }

    /// A scanner that takes a file's bytes a block at a time.
    pub fn block_scanner(&self) -> BlockScan<'_> {
        let mut scanner = yara_x::blocks::Scanner::new(&self.rules);
        // No file bytes are kept around matches: findings carry rule names only.
        scanner.match_context_size(0);
        BlockScan { scanner }
    }
}

/// Finds the rule that makes `text` fail by compiling it rule by rule (only when the whole failed).
fn failing_rule(text: &str) -> String {
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let t = t
            .strip_prefix("private ")
            .or_else(|| t.strip_prefix("global "))
            .unwrap_or(t);
        if t.starts_with("rule ") {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts.push(text.len());
    let head = &text[..starts[0]];
    for w in starts.windows(2) {
        let chunk = &text[w[0]..w[1]];
        let candidate = format!("{head}\n{chunk}");
        if yara_x::compile(candidate.as_str()).is_err() {
            let name = chunk
                .split_whitespace()
                .skip_while(|w| *w != "rule")
                .nth(1)
                .unwrap_or("?");
            return name
                .trim_end_matches(['{', ':'])
                .chars()
                .take(128)
                .collect();
        }
    }
    "(outside any rule)".to_owned()
}

/// A YARA-X pass over one stream of bytes, fed in (possibly overlapping) blocks.
pub struct BlockScan<'r> {
    scanner: yara_x::blocks::Scanner<'r>,
}

impl BlockScan<'_> {
    /// Scans `data`, which starts at `base` in the stream.
    pub fn feed(&mut self, base: u64, data: &[u8]) -> Result<(), yara_x::ScanError> {
        let base = usize::try_from(base).unwrap_or(usize::MAX);
        self.scanner.scan(base, data)?;
        Ok(())
    }

    /// Evaluates the rules over everything fed.
    pub fn finish(mut self, findings: &mut Vec<Finding>) -> Result<(), yara_x::ScanError> {
        let results = self.scanner.finish()?;
        for rule in results.matching_rules() {
            let verdict = rule
                .metadata()
                .find_map(|(k, v)| match (k, v) {
                    ("verdict", yara_x::MetaValue::String("infected")) => Some(Verdict::Infected),
                    ("verdict", yara_x::MetaValue::String(_)) => Some(Verdict::Suspicious),
                    _ => None,
                })
                .unwrap_or(Verdict::Suspicious);
            findings.push(Finding {
                engine: Engine::Yara,
                signature: rule.identifier().to_owned(),
                verdict,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn scan(rules: &Ruleset, data: &[u8], block: usize) -> Vec<String> {
        let mut s = rules.block_scanner();
        let overlap = 256;
        let mut base = 0;
        while base < data.len() {
            let start = base.saturating_sub(overlap);
            let end = (base + block).min(data.len());
            s.feed(start as u64, &data[start..end]).unwrap();
            base = end;
        }
        let mut f = Vec::new();
        s.finish(&mut f).unwrap();
        f.into_iter().map(|f| f.signature).collect()
    }

    pub(crate) fn eicar() -> Vec<u8> {
        // Assembled at run time so the source does not carry the test string in one piece.
        let mut v = b"X5O!P%@AP[4\\PZX54(P^)7CC)7}$".to_vec();
        v.extend_from_slice(b"EICAR-STANDARD-ANTIVIRUS-");
        v.extend_from_slice(b"TEST-FILE!$H+H*");
        v
    }

    #[test]
    fn shipped_rules_compile_and_find_their_targets() {
        let rules = Ruleset::load(None).unwrap();
        assert!(rules.version().starts_with("2026."), "{}", rules.version());
        assert_eq!(scan(&rules, &eicar(), 4096), ["eicar_test_file"]);
        assert!(scan(&rules, b"hello world, nothing to see", 4096).is_empty());
        let mut elf = vec![0x7f, b'E', b'L', b'F', 2, 1, 1, 0];
        elf.resize(4096, 0);
        assert_eq!(scan(&rules, &elf, 4096), ["executable_elf"]);
        let mut pe = b"MZ".to_vec();
        pe.resize(0x80, 0);
        pe.extend_from_slice(&[b'P', b'E', 0, 0, 0x64, 0x86]);
        pe.resize(2048, 0);
        assert_eq!(scan(&rules, &pe, 4096), ["executable_pe"]);
        let pdf = b"%PDF-1.7\n1 0 obj << /OpenAction << /S /JavaScript /JS (app.alert(1)) >> >>";
        assert_eq!(scan(&rules, pdf, 4096), ["pdf_active_content"]);
        assert!(scan(&rules, b"%PDF-1.7\n1 0 obj << /Type /Catalog >>", 4096).is_empty());
        let html = b"<html><script>var b=new Blob([Uint8Array.from(atob(x))]);a.href=URL.createObjectURL(b);a.download='x.exe'</script>";
        assert_eq!(scan(&rules, html, 4096), ["html_smuggling"]);
        let mut macho = vec![0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1];
        macho.resize(1024, 0);
        assert_eq!(scan(&rules, &macho, 4096), ["executable_macho"]);
        // A .docm: a zip whose parts include word/vbaProject.bin.
        let docm = crate::engines::archive::build::zip(&[
            ("[Content_Types].xml", b"<Types/>"),
            ("word/vbaProject.bin", b"\xd0\xcf\x11\xe0 macro storage"),
        ]);
        assert_eq!(scan(&rules, &docm, 4096), ["office_vba_macros"]);
        let docx = crate::engines::archive::build::zip(&[("word/document.xml", b"<w:document/>")]);
        assert!(scan(&rules, &docx, 4096).is_empty());
        // A legacy .doc (OLE2) with a VBA project stream name (UTF-16LE).
        let mut doc = vec![0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1];
        doc.resize(512, 0);
        doc.extend("_VBA_PROJECT".encode_utf16().flat_map(|c| c.to_le_bytes()));
        assert_eq!(scan(&rules, &doc, 4096), ["office_vba_macros"]);
        // A magic number anywhere but offset 0 is not an executable.
        let mut late = vec![b' '; 10];
        late.extend_from_slice(&elf);
        assert!(scan(&rules, &late, 4096).is_empty());
    }

    #[test]
    fn a_pattern_across_a_block_boundary_is_found_through_the_overlap() {
        let rules = Ruleset::load(None).unwrap();
        let mut data = vec![b'a'; 10_000];
        let e = eicar();
        data[4070..4070 + e.len()].copy_from_slice(&e);
        assert_eq!(scan(&rules, &data, 4096), ["eicar_test_file"]);
    }

    #[test]
    fn a_bad_rule_is_named_and_a_rule_without_verdict_is_refused() {
        let bad = "rule fine { meta: verdict = \"suspicious\" strings: $a = \"x\" condition: $a }\n\
                   rule broken_one { strings: $a = \"y\" condition: $b }\n";
        let err = Ruleset::compile(&[("local.yar".into(), bad.into())], "t").unwrap_err();
        assert!(
            matches!(&err, RulesError::Compile { rule, origin, .. } if rule == "broken_one" && origin == "local.yar"),
            "{err}"
        );
        assert!(err.to_string().contains("broken_one"));
        let none = "rule quiet { strings: $a = \"x\" condition: $a }";
        let err = Ruleset::compile(&[("l.yar".into(), none.into())], "t").unwrap_err();
        assert!(err.to_string().contains("quiet"), "{err}");
    }

    #[test]
    fn the_version_changes_with_any_rule() {
        let a = "rule a { meta: verdict = \"suspicious\" strings: $a = \"x\" condition: $a }";
        let b = "rule a { meta: verdict = \"suspicious\" strings: $a = \"z\" condition: $a }";
        let va = Ruleset::compile(&[("l".into(), a.into())], "1").unwrap();
        let vb = Ruleset::compile(&[("l".into(), b.into())], "1").unwrap();
        assert_ne!(va.version(), vb.version());
        assert!(va.version().starts_with("1+"));
    }
}
