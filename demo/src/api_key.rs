//! The API key that guards `POST /api/broadcast`: `ALIGHT_API_KEY`, or one generated on first start
//! and kept in `<data>/api_key` so that it survives restarts.

use std::io::{self, Read};
use std::path::Path;

/// File name of the stored key inside the data directory.
const FILE: &str = "api_key";

/// The key from `env`, else the stored one, else a new one (stored for next time).
pub fn load_or_create(env: Option<String>, data: &Path) -> io::Result<String> {
    if let Some(key) = env.filter(|k| !k.is_empty()) {
        return Ok(key);
    }
    let path = data.join(FILE);
    match std::fs::read_to_string(&path) {
        Ok(key) if !key.trim().is_empty() => return Ok(key.trim().to_owned()),
        Ok(_) => {}
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let key = generate()?;
    std::fs::write(&path, format!("{key}\n"))?;
    Ok(key)
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
    fn env_wins_then_stored_key_is_reused() -> io::Result<()> {
        let dir = std::env::temp_dir().join(format!("alight-api-key-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        assert_eq!(load_or_create(Some("from-env".into()), &dir)?, "from-env");
        let first = load_or_create(None, &dir)?;
        assert_eq!(first.len(), 32);
        assert_eq!(load_or_create(None, &dir)?, first);
        std::fs::remove_dir_all(&dir)?;
        Ok(())
    }
}
