//! Secrets kept in the data directory: the API key that guards the HTTP API (`ALIGHT_API_KEY`) and
//! the key that signs login tokens (`ALIGHT_TOKEN_SECRET`). Each comes from its environment variable
//! or else from its file, generated on first start so that it survives restarts.

use std::io::{self, Read, Write};
use std::path::Path;

/// File name of the stored API key inside the data directory.
pub const API_KEY_FILE: &str = "api_key";
/// File name of the stored token signing key inside the data directory.
pub const TOKEN_SECRET_FILE: &str = "token_secret";

/// The secret from `env`, else the one stored in `path`, else a new one (stored for next time).
pub fn load_or_create(env: Option<String>, path: &Path) -> io::Result<String> {
    if let Some(secret) = env.filter(|k| !k.is_empty()) {
        return Ok(secret);
    }
    match std::fs::read_to_string(path) {
        Ok(secret) if !secret.trim().is_empty() => return Ok(secret.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let secret = generate()?;
    write_private(path, &format!("{secret}\n"))?;
    Ok(secret)
}

/// Writes `contents` to `path`, readable by its owner only on Unix.
fn write_private(path: &Path, contents: &str) -> io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

/// 128 random bits from the OS, as hex.
fn generate() -> io::Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_wins_then_stored_secret_is_reused() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("alight-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(API_KEY_FILE);
        assert_eq!(load_or_create(Some("from-env".into()), &path)?, "from-env");
        let first = load_or_create(None, &path)?;
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(Some(String::new()), &path)?, first);
        let other = load_or_create(None, &dir.join(TOKEN_SECRET_FILE))?;
        assert_ne!(other, first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)?.permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
