//! Where the tests and the bench find what scripts/install-deps put in the tools cache: the
//! converted model and Debian's desktop-base artwork (the real pictures they classify).
#![allow(dead_code)]

use std::path::PathBuf;

fn tools() -> PathBuf {
    let home = std::env::var_os("HOME").unwrap_or_default();
    PathBuf::from(home).join(".cache/coffer-tools")
}

/// `$COFFER_NSFW_MODEL`, else the converted model in the tools cache.
pub fn model_path() -> PathBuf {
    std::env::var_os("COFFER_NSFW_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools().join("nsfw/mobilenet_v2.safetensors"))
}

/// Where desktop-base is unpacked; the pictures are under it at [`PICTURES`].
pub fn art_dir() -> PathBuf {
    tools().join("desktop-base/usr/share")
}

/// Six JPEGs and six PNGs of desktop-base, 0.3–1.6 megapixels.
pub const PICTURES: [&str; 12] = [
    "plasma/look-and-feel/org.debian.desktop/contents/previews/fullscreenpreview.jpg",
    "desktop-base/joy-theme/login/sddm-preview.jpg",
    "desktop-base/softwaves-theme/login/sddm-preview.jpg",
    "desktop-base/lines-theme/login/sddm-preview.jpg",
    "desktop-base/lines-theme/login/sddm-preview-nologo.jpg",
    "desktop-base/spacefun-theme/login/sddm-preview.jpg",
    "desktop-base/emerald-theme/grub/grub-4x3.png",
    "desktop-base/softwaves-theme/grub/grub-16x9.png",
    "plymouth/themes/joy/background.png",
    "plymouth/themes/spacefun/swirlaxy.png",
    "plymouth/themes/emerald/logo+emerald.png",
    "plasma/look-and-feel/org.debian.desktop/contents/previews/preview.png",
];

/// The pictures' paths, each checked to exist.
pub fn pictures() -> Result<Vec<PathBuf>, String> {
    let dir = art_dir();
    PICTURES
        .iter()
        .map(|p| {
            let p = dir.join(p);
            if p.exists() {
                Ok(p)
            } else {
                Err(format!(
                    "{} is missing: run scripts/install-deps",
                    p.display()
                ))
            }
        })
        .collect()
}
