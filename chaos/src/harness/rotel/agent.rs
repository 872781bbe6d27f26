//! Finding the `rotel-agent` binary the way `scripts/test.sh` does, so the chaos suite and the
//! trace tests run by themselves on a fresh checkout: `$ROTEL_AGENT`, else `rotel-agent` on
//! `PATH`, else the binary inside the `rotel` package of `python3`; when none is there,
//! `python3 -m pip install --quiet rotel` and the package is looked up again.
//!
//! Design constraints:
//! - Resolved once per process ([`agent`]), so tests running in parallel install at most once.
//! - Never a silent skip: if rotel cannot be found nor installed, the lookup panics with what
//!   it tried.
//! - The order is a pure function of its inputs ([`resolve`]: the variable, the `PATH`, the
//!   Python interpreter), so the unit tests below check it with stand-ins, not the machine's.

use std::ffi::{OsStr, OsString};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// The interpreter whose `rotel` package is searched and installed into (as in `scripts/test.sh`).
const PYTHON: &str = "python3";
/// Prints the package's `rotel-agent` path if it is executable, else exits 1 (as in
/// `scripts/test.sh`).
const IN_PACKAGE: &str = "import os, rotel; p = os.path.join(os.path.dirname(rotel.__file__), \
                          'rotel-agent'); print(p) if os.access(p, os.X_OK) else exit(1)";

static AGENT: OnceLock<PathBuf> = OnceLock::new();

/// The `rotel-agent` to run, installed with pip on first use if it is nowhere to be found.
pub fn agent() -> PathBuf {
    AGENT
        .get_or_init(|| {
            resolve(
                std::env::var_os("ROTEL_AGENT"),
                std::env::var_os("PATH"),
                Path::new(PYTHON),
            )
            .unwrap_or_else(|e| panic!("{e}"))
        })
        .clone()
}

/// `rotel-agent` from `env` (`$ROTEL_AGENT`), `path` (`$PATH`) or `python`'s `rotel` package,
/// installing the package with `python -m pip` when all three come up empty.
pub(super) fn resolve(
    env: Option<OsString>,
    path: Option<OsString>,
    python: &Path,
) -> Result<PathBuf, String> {
    if let Some(found) = lookup(env, path.as_deref(), python) {
        return Ok(found);
    }
    eprintln!("rotel-agent not found: installing rotel (PyPI package) with pip…");
    let st = Command::new(python)
        .args(["-m", "pip", "install", "--quiet", "rotel"])
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .status()
        .map_err(|e| {
            format!(
                "rotel not installed, and {} not runnable: {e}",
                python.display()
            )
        })?;
    if !st.success() {
        return Err(format!(
            "rotel not installed ($ROTEL_AGENT unset, no rotel-agent on PATH, no rotel package \
             in {}), and `{} -m pip install --quiet rotel` failed ({st})",
            python.display(),
            python.display()
        ));
    }
    in_package(python).ok_or_else(|| {
        format!(
            "pip installed rotel, but {} has no executable rotel/rotel-agent",
            python.display()
        )
    })
}

/// The first of `env` (when set and not empty), an executable `rotel-agent` in a `path`
/// directory, `python`'s package binary.
fn lookup(env: Option<OsString>, path: Option<&OsStr>, python: &Path) -> Option<PathBuf> {
    if let Some(p) = env.filter(|p| !p.is_empty()) {
        return Some(p.into());
    }
    path.into_iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("rotel-agent"))
        .find(|p| executable(p))
        .or_else(|| in_package(python))
}

/// The `rotel-agent` inside `python`'s installed `rotel` package, if any.
fn in_package(python: &Path) -> Option<PathBuf> {
    let out = Command::new(python)
        .args(["-c", IN_PACKAGE])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !p.is_empty()).then(|| p.into())
}

fn executable(p: &Path) -> bool {
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// Held by every test here: a script being written while another thread forks stays open
    /// for writing in the child until it execs, and running it then fails with ETXTBSY.
    static SCRIPTS: Mutex<()> = Mutex::new(());

    fn serial() -> MutexGuard<'static, ()> {
        SCRIPTS.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes an executable shell script `name` into `dir`.
    fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    /// A stand-in `python3`: `-c` prints `pkg/rotel-agent` when it exists (the package lookup),
    /// `-m pip install --quiet rotel` creates it and logs the call to `pip.log` (an install).
    fn fake_python(dir: &Path) -> PathBuf {
        let pkg = dir.join("pkg");
        std::fs::create_dir_all(&pkg).unwrap();
        let (agent, log) = (pkg.join("rotel-agent"), dir.join("pip.log"));
        script(
            dir,
            "python3",
            &format!(
                "case \"$1\" in\n\
                 -c) [ -x '{a}' ] && echo '{a}' || exit 1 ;;\n\
                 -m) echo \"$*\" >> '{l}'; printf '#!/bin/sh\\n' > '{a}'; chmod +x '{a}' ;;\n\
                 esac",
                a = agent.display(),
                l = log.display()
            ),
        )
    }

    fn pip_calls(dir: &Path) -> String {
        std::fs::read_to_string(dir.join("pip.log")).unwrap_or_default()
    }

    #[test]
    fn variable_then_path_then_package() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(tmp.path());
        let bin = tmp.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        let on_path = script(&bin, "rotel-agent", "");
        let in_pkg = tmp.path().join("pkg/rotel-agent");
        script(in_pkg.parent().unwrap(), "rotel-agent", "");
        let path = Some(std::env::join_paths(["/nonexistent".as_ref(), bin.as_path()]).unwrap());

        let explicit = Some(OsString::from("/opt/rotel/rotel-agent"));
        assert_eq!(
            resolve(explicit, path.clone(), &python).unwrap(),
            PathBuf::from("/opt/rotel/rotel-agent"),
            "ROTEL_AGENT wins"
        );
        assert_eq!(
            resolve(Some(OsString::new()), path.clone(), &python).unwrap(),
            on_path,
            "an empty ROTEL_AGENT counts as unset; PATH is next"
        );
        assert_eq!(resolve(None, path, &python).unwrap(), on_path);
        assert_eq!(
            resolve(None, Some("/nonexistent".into()), &python).unwrap(),
            in_pkg,
            "the package is last"
        );
        assert_eq!(
            pip_calls(tmp.path()),
            "",
            "nothing installed when rotel is there"
        );
    }

    #[test]
    fn not_executable_on_path_is_skipped() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(tmp.path());
        std::fs::write(tmp.path().join("rotel-agent"), "").unwrap();
        let in_pkg = tmp.path().join("pkg/rotel-agent");
        script(in_pkg.parent().unwrap(), "rotel-agent", "");
        let path = Some(tmp.path().as_os_str().to_owned());
        assert_eq!(resolve(None, path, &python).unwrap(), in_pkg);
    }

    #[test]
    fn installs_with_pip_when_missing() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let python = fake_python(tmp.path());
        let found = resolve(None, Some("/nonexistent".into()), &python).unwrap();
        assert_eq!(found, tmp.path().join("pkg/rotel-agent"));
        assert_eq!(pip_calls(tmp.path()), "-m pip install --quiet rotel\n");
    }

    #[test]
    fn fails_loudly_when_install_fails() {
        let _serial = serial();
        let tmp = tempfile::tempdir().unwrap();
        let python = script(tmp.path(), "python3", "exit 1");
        let err = resolve(None, Some("/nonexistent".into()), &python).unwrap_err();
        assert!(err.contains("pip install --quiet rotel"), "{err}");
    }
}
