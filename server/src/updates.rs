//! Client updates (issue 16): the operator's own server tells its users' desktop apps which
//! version to run and serves the packages, so an organisation that self-hosts chat also
//! controls its client versions.
//!
//! The setting `updates_dir` names a directory with one subdirectory per version, named by its
//! semver (`1.4.0/`); anything else in it (a `.incoming/` being copied, `latest`, `old-1.3`) is
//! ignored, so a version goes live atomically when its directory is renamed into place. A
//! version directory holds the packages as Tauri's bundler names them, each with the `.sig` file
//! `tauri signer sign` (or `tauri build` with `createUpdaterArtifacts`) wrote beside it, and
//! optionally `notes.md`, shown to the user:
//!
//! | bundle | file name ends with |
//! |---|---|
//! | `deb` | `_amd64.deb`, `_arm64.deb`, … (Debian's architecture names) |
//! | `rpm` | `.x86_64.rpm`, `.aarch64.rpm`, … |
//! | `appimage` | `_amd64.AppImage` (or `.AppImage.tar.gz`) |
//! | `nsis` | `_x64-setup.exe`, `_arm64-setup.exe`, `_x86-setup.exe` |
//! | `msi` | `.msi`, with `_x64_` (`_arm64_`, `_x86_`) in the name |
//! | `app` (macOS) | `_aarch64.app.tar.gz`, `_x64.app.tar.gz` or `_universal.app.tar.gz` |
//!
//! An app whose bundle type is unknown (not installed from a package) gets its system's
//! default: the AppImage on Linux, the NSIS installer on Windows, the `.app` on macOS.
//!
//! The server only chooses and serves files: it never signs, and the app trusts only the public
//! key compiled into it, so a compromised chat server cannot make clients install anything the
//! app's publisher did not sign. The directory is read on every check (a check is a few small
//! directory reads; apps check when they connect), so a new version is offered at once.

use crate::error::{ApiError, ApiResult};
use protocol::ErrorCode;
use semver::Version;
use std::path::{Path, PathBuf};

/// Release notes longer than this are cut (they are shown in a banner, not a document).
const MAX_NOTES_BYTES: usize = 16 * 1024;

/// An operating system as the updater names it in `{{target}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Os {
    Linux,
    Darwin,
    Windows,
}

/// A CPU architecture as the updater names it in `{{arch}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arch {
    X86_64,
    Aarch64,
    I686,
    Armv7,
    Riscv64,
}

/// How the running app was installed, as the updater names it in `{{bundle_type}}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bundle {
    Deb,
    Rpm,
    AppImage,
    App,
    Msi,
    Nsis,
}

/// The platform an app asks for: the package must be installable by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Platform {
    pub os: Os,
    pub arch: Arch,
    pub bundle: Bundle,
}

fn bad(what: &str) -> ApiError {
    ApiError::new(ErrorCode::BadRequest, format!("unknown {what}"))
}

impl Platform {
    /// Parses the path segments of a check. `bundle` is `unknown` for an app that was not
    /// installed from a package; it gets its system's default bundle.
    pub fn parse(target: &str, arch: &str, bundle: &str) -> ApiResult<Platform> {
        let os = match target {
            "linux" => Os::Linux,
            "darwin" => Os::Darwin,
            "windows" => Os::Windows,
            _ => return Err(bad("target (linux, darwin, windows)")),
        };
        let arch = match arch {
            "x86_64" => Arch::X86_64,
            "aarch64" => Arch::Aarch64,
            "i686" => Arch::I686,
            "armv7" => Arch::Armv7,
            "riscv64" => Arch::Riscv64,
            _ => return Err(bad("arch (x86_64, aarch64, i686, armv7, riscv64)")),
        };
        let bundle = match (bundle, os) {
            ("deb", Os::Linux) => Bundle::Deb,
            ("rpm", Os::Linux) => Bundle::Rpm,
            ("appimage", Os::Linux) | ("unknown", Os::Linux) => Bundle::AppImage,
            ("app", Os::Darwin) | ("unknown", Os::Darwin) => Bundle::App,
            ("msi", Os::Windows) => Bundle::Msi,
            ("nsis", Os::Windows) | ("unknown", Os::Windows) => Bundle::Nsis,
            _ => return Err(bad("bundle type for this target")),
        };
        Ok(Platform { os, arch, bundle })
    }

    /// Whether the file `name` is this platform's package.
    pub fn matches(&self, name: &str) -> bool {
        let debian = match self.arch {
            Arch::X86_64 => "amd64",
            Arch::Aarch64 => "arm64",
            Arch::I686 => "i386",
            Arch::Armv7 => "armhf",
            Arch::Riscv64 => "riscv64",
        };
        let windows = match self.arch {
            Arch::X86_64 => "x64",
            Arch::Aarch64 => "arm64",
            Arch::I686 => "x86",
            Arch::Armv7 | Arch::Riscv64 => return false,
        };
        match self.bundle {
            Bundle::Deb => name.ends_with(&format!("_{debian}.deb")),
            Bundle::Rpm => {
                let rpm = match self.arch {
                    Arch::X86_64 => "x86_64",
                    Arch::Aarch64 => "aarch64",
                    Arch::I686 => "i686",
                    Arch::Armv7 => "armhfp",
                    Arch::Riscv64 => "riscv64",
                };
                name.ends_with(&format!(".{rpm}.rpm"))
            }
            Bundle::AppImage => {
                name.ends_with(&format!("_{debian}.AppImage"))
                    || name.ends_with(&format!("_{debian}.AppImage.tar.gz"))
            }
            Bundle::Nsis => name.ends_with(&format!("_{windows}-setup.exe")),
            Bundle::Msi => name.ends_with(".msi") && name.contains(&format!("_{windows}_")),
            Bundle::App => {
                let mac = match self.arch {
                    Arch::X86_64 => "x64",
                    Arch::Aarch64 => "aarch64",
                    _ => return false,
                };
                name.ends_with(&format!("_{mac}.app.tar.gz"))
                    || name.ends_with("_universal.app.tar.gz")
            }
        }
    }
}

/// A version offered to an app: its package and signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    pub version: Version,
    /// The package's file name in the version's directory.
    pub file: String,
    /// The `.sig` file's contents.
    pub signature: String,
    pub notes: Option<String>,
}

/// The newest version in `dir` above `current` with a package for `platform`, if any.
/// Versions without such a package (or without its `.sig`) are skipped.
pub async fn newest(dir: &Path, platform: Platform, current: &Version) -> ApiResult<Option<Offer>> {
    let dir = dir.to_owned();
    let current = current.clone();
    tokio::task::spawn_blocking(move || newest_blocking(&dir, platform, &current))
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "update scan panicked");
            ApiError::new(ErrorCode::Internal, "internal error")
        })?
}

fn io_error(dir: &Path, e: std::io::Error) -> ApiError {
    tracing::error!(dir = %dir.display(), error = %e, "cannot read updates_dir");
    ApiError::new(ErrorCode::Internal, "internal error")
}

fn newest_blocking(dir: &Path, platform: Platform, current: &Version) -> ApiResult<Option<Offer>> {
    let mut versions: Vec<(Version, PathBuf)> = std::fs::read_dir(dir)
        .map_err(|e| io_error(dir, e))?
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = Version::parse(entry.file_name().to_str()?).ok()?;
            (version > *current && entry.path().is_dir()).then(|| (version, entry.path()))
        })
        .collect();
    versions.sort_by(|a, b| b.0.cmp(&a.0));
    for (version, path) in versions {
        let mut names: Vec<String> = match std::fs::read_dir(&path) {
            Ok(entries) => entries
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|n| !n.starts_with('.'))
                .collect(),
            Err(e) => {
                tracing::warn!(dir = %path.display(), error = %e, "cannot read a version directory");
                continue;
            }
        };
        names.sort();
        let Some(file) = names
            .iter()
            .find(|n| platform.matches(n) && names.contains(&format!("{n}.sig")))
        else {
            continue;
        };
        let signature = match std::fs::read_to_string(path.join(format!("{file}.sig"))) {
            Ok(s) => s.trim().to_owned(),
            Err(e) => {
                tracing::warn!(file = %file, error = %e, "cannot read a package's signature");
                continue;
            }
        };
        let notes = std::fs::read(path.join("notes.md")).ok().map(|bytes| {
            let cut = &bytes[..bytes.len().min(MAX_NOTES_BYTES)];
            String::from_utf8_lossy(cut).trim().to_owned()
        });
        return Ok(Some(Offer {
            version,
            file: file.clone(),
            signature,
            notes,
        }));
    }
    Ok(None)
}

/// The path of `file` in version `version`'s directory, refusing anything that could leave it:
/// the version must be a semver, the file a plain name (letters, digits, `.`, `_`, `-`, `+`,
/// not starting with a dot), so `..`, `/`, `\` and hidden files never reach the file system.
pub fn file_path(dir: &Path, version: &str, file: &str) -> ApiResult<PathBuf> {
    if Version::parse(version).is_err() {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the version is not a semantic version",
        ));
    }
    let plain = !file.is_empty()
        && file.len() <= 255
        && !file.starts_with('.')
        && file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-+".contains(&b));
    if !plain {
        return Err(ApiError::new(
            ErrorCode::BadRequest,
            "the file name must be a plain name (letters, digits, '.', '_', '-', '+')",
        ));
    }
    Ok(dir.join(version).join(file))
}

/// The answer for an app when updates are off or a file is missing.
pub fn not_found(what: &'static str) -> ApiError {
    ApiError::new(ErrorCode::UpdateNotFound, what)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn linux(bundle: &str) -> Platform {
        Platform::parse("linux", "x86_64", bundle).unwrap()
    }

    #[test]
    fn packages_are_told_apart_by_bundle_and_arch() {
        assert!(linux("deb").matches("chat_1.2.0_amd64.deb"));
        assert!(!linux("deb").matches("chat_1.2.0_arm64.deb"));
        assert!(!linux("deb").matches("chat-1.2.0-1.x86_64.rpm"));
        assert!(linux("rpm").matches("chat-1.2.0-1.x86_64.rpm"));
        assert!(linux("unknown").matches("Chat_1.2.0_amd64.AppImage"));
        assert!(!linux("unknown").matches("Chat_1.2.0_amd64.AppImage.sig"));
        let win = Platform::parse("windows", "x86_64", "unknown").unwrap();
        assert!(win.matches("Chat_1.2.0_x64-setup.exe"));
        let msi = Platform::parse("windows", "aarch64", "msi").unwrap();
        assert!(msi.matches("Chat_1.2.0_arm64_en-US.msi"));
        assert!(!msi.matches("Chat_1.2.0_x64_en-US.msi"));
        let mac = Platform::parse("darwin", "aarch64", "app").unwrap();
        assert!(mac.matches("Chat_1.2.0_universal.app.tar.gz"));
        assert!(!mac.matches("Chat_1.2.0_x64.app.tar.gz"));
    }

    #[test]
    fn unknown_segments_are_refused() {
        for (t, a, b) in [
            ("plan9", "x86_64", "deb"),
            ("linux", "sparc", "deb"),
            ("linux", "x86_64", "msi"),
            ("windows", "x86_64", "deb"),
        ] {
            let e = Platform::parse(t, a, b).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{t}/{a}/{b}");
        }
    }

    #[test]
    fn file_names_cannot_leave_the_directory() {
        let dir = Path::new("/srv/updates");
        assert_eq!(
            file_path(dir, "1.2.0", "chat_1.2.0_amd64.deb").unwrap(),
            dir.join("1.2.0/chat_1.2.0_amd64.deb")
        );
        for (version, file) in [
            ("..", "passwd"),
            ("1.2.0", ".."),
            ("1.2.0", "../../etc/passwd"),
            ("1.2.0", "a/b"),
            ("1.2.0", "a\\b"),
            ("1.2.0", ".hidden"),
            ("1.2.0", ""),
            ("../1.2.0", "x.deb"),
        ] {
            let e = file_path(dir, version, file).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{version}/{file}");
        }
    }
}
