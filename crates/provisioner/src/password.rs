//! Random passwords from the operating system's CSPRNG. Passwords are never logged.

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
/// Length of generated passwords.
pub const PASSWORD_LENGTH: usize = 24;

/// Maps random bytes to a password over [A-Za-z0-9] without modulo bias (bytes at or above the
/// largest multiple of the alphabet size are skipped). Returns `None` when the bytes run out
/// before `len` characters, or when the result lacks an upper-case letter, a lower-case letter or
/// a digit (SQL Server's password policy wants three character classes).
pub fn password_from_bytes(bytes: &[u8], len: usize) -> Option<String> {
    let limit = (256 / ALPHABET.len() * ALPHABET.len()) as u16;
    let password: String = bytes
        .iter()
        .filter(|&&b| u16::from(b) < limit)
        .take(len)
        .map(|&b| ALPHABET[usize::from(b) % ALPHABET.len()] as char)
        .collect();
    let complete = password.len() == len
        && password.chars().any(|c| c.is_ascii_uppercase())
        && password.chars().any(|c| c.is_ascii_lowercase())
        && password.chars().any(|c| c.is_ascii_digit());
    complete.then_some(password)
}

/// A fresh random password of [`PASSWORD_LENGTH`] characters.
pub fn generate() -> Result<String, crate::error::Error> {
    loop {
        let mut bytes = [0u8; 64];
        getrandom::fill(&mut bytes).map_err(|e| crate::error::Error::Random(e.to_string()))?;
        if let Some(password) = password_from_bytes(&bytes, PASSWORD_LENGTH) {
            return Ok(password);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_bytes_without_bias_and_checks_classes() {
        // 248..=255 are rejected: 62 * 4 = 248.
        assert_eq!(
            password_from_bytes(&[0, 26, 52, 250], 3).as_deref(),
            Some("Aa0")
        );
        assert_eq!(
            password_from_bytes(&[0, 1, 2], 3),
            None,
            "only upper-case letters"
        );
        assert_eq!(password_from_bytes(&[0, 26], 3), None, "too few bytes");
    }

    #[test]
    fn generated_passwords_differ_and_have_the_right_shape() {
        let a = generate().unwrap();
        let b = generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), PASSWORD_LENGTH);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }
}
