//! Named option sets (`[presets]` in config): `p_thumb` expands to the preset's options, and
//! explicit options override the preset's. With `security.only_presets`, any option other than
//! a preset is refused, so nobody can make a million variants of one image.
//!
//! Pure: presets are validated once at start-up, then expanded textually before
//! `options::parse`, so a preset behaves exactly as if its options were written in the URL.

use std::collections::{BTreeMap, HashSet};

use crate::options::{self, OptionsError, Transform};

/// The option that names a preset.
const PREFIX: &str = "p_";

#[derive(Debug, Clone, Default)]
pub struct Presets {
    presets: BTreeMap<String, String>,
    only: bool,
}

impl Presets {
    /// Validate every preset (name `[a-z0-9_-]+`, options that parse, no nested `p_`).
    /// `Err` is (preset name, reason).
    pub fn new(presets: BTreeMap<String, String>, only: bool) -> Result<Self, (String, String)> {
        for (name, value) in &presets {
            let name_ok = !name.is_empty()
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-'
                });
            if !name_ok {
                return Err((name.clone(), "names use a-z, 0-9, `_` and `-`".into()));
            }
            if value.split(',').any(|t| t.starts_with(PREFIX)) {
                return Err((name.clone(), "a preset cannot name another preset".into()));
            }
            options::parse(value).map_err(|e| (name.clone(), e.to_string()))?;
        }
        Ok(Presets { presets, only })
    }

    pub fn only_presets(&self) -> bool {
        self.only
    }

    /// The options segment with `p_<name>` replaced by the preset's tokens (those the segment
    /// does not override), as text: what the URL fixes, for client hints. Call after
    /// [`Presets::parse`] succeeded; an unknown preset expands to nothing.
    pub fn expand(&self, segment: &str) -> String {
        let tokens: Vec<&str> = segment.split(',').collect();
        let overridden: HashSet<&str> = tokens
            .iter()
            .filter(|t| !t.starts_with(PREFIX))
            .map(|t| name_of(t))
            .collect();
        let mut out: Vec<&str> = Vec::new();
        for token in tokens {
            match token.strip_prefix(PREFIX).and_then(|n| self.presets.get(n)) {
                Some(preset) => out.extend(
                    preset
                        .split(',')
                        .filter(|t| !overridden.contains(name_of(t))),
                ),
                None if token.starts_with(PREFIX) => {}
                None => out.push(token),
            }
        }
        out.join(",")
    }

    /// Parse an options segment, expanding `p_<name>`.
    pub fn parse(&self, segment: &str) -> Result<Transform, OptionsError> {
        if segment == "_" {
            return options::parse(segment);
        }
        let mut preset: Option<&str> = None;
        let mut explicit = Vec::new();
        for token in segment.split(',') {
            if let Some(name) = token.strip_prefix(PREFIX) {
                if preset.is_some() {
                    return Err(error(token, "only one preset per URL"));
                }
                let value = self
                    .presets
                    .get(name)
                    .ok_or_else(|| error(token, "no such preset"))?;
                preset = Some(value);
            } else if self.only {
                return Err(error(token, "only presets (p_<name>) are allowed here"));
            } else {
                explicit.push(token);
            }
        }
        let Some(preset) = preset else {
            return options::parse(segment);
        };
        let overridden: HashSet<&str> = explicit.iter().map(|t| name_of(t)).collect();
        let merged: Vec<&str> = preset
            .split(',')
            .filter(|t| !overridden.contains(name_of(t)))
            .chain(explicit)
            .collect();
        if merged.is_empty() {
            return options::parse("_");
        }
        options::parse(&merged.join(","))
    }
}

fn name_of(token: &str) -> &str {
    token.split_once('_').map_or(token, |(name, _)| name)
}

fn error(token: &str, reason: &str) -> OptionsError {
    OptionsError {
        token: token.to_owned(),
        reason: reason.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn presets(only: bool) -> Presets {
        let map = BTreeMap::from([
            ("thumb".to_string(), "w_150,h_150,c_fill".to_string()),
            ("hero".to_string(), "w_1200,q_70".to_string()),
        ]);
        Presets::new(map, only).expect("valid presets")
    }

    fn canon(p: &Presets, s: &str) -> String {
        p.parse(s)
            .map(|t| t.to_string())
            .unwrap_or_else(|e| format!("ERR {}", e.token))
    }

    #[test]
    fn preset_expands_and_explicit_options_override() {
        let p = presets(false);
        assert_eq!(canon(&p, "p_thumb"), "w_150,h_150,c_fill");
        assert_eq!(canon(&p, "p_thumb,w_200"), "w_200,h_150,c_fill");
        assert_eq!(
            canon(&p, "w_200,p_thumb,f_webp"),
            "w_200,h_150,c_fill,f_webp"
        );
        assert_eq!(canon(&p, "p_hero,dpr_2"), "w_2400,q_70");
        assert_eq!(canon(&p, "w_10"), "w_10");
    }

    #[test]
    fn preset_unknown_or_repeated_is_an_error_naming_it() {
        let p = presets(false);
        assert_eq!(canon(&p, "p_nope"), "ERR p_nope");
        assert_eq!(canon(&p, "p_thumb,p_hero"), "ERR p_hero");
    }

    #[test]
    fn preset_only_mode_refuses_other_options() {
        let p = presets(true);
        assert_eq!(canon(&p, "p_thumb"), "w_150,h_150,c_fill");
        assert_eq!(canon(&p, "p_thumb,w_151"), "ERR w_151");
        assert_eq!(canon(&p, "w_150"), "ERR w_150");
        assert_eq!(canon(&p, "_"), "_");
    }

    #[test]
    fn preset_definitions_are_validated() {
        let bad =
            |k: &str, v: &str| Presets::new(BTreeMap::from([(k.into(), v.into())]), false).is_err();
        assert!(bad("Thumb", "w_1"));
        assert!(bad("t", "w_abc"));
        assert!(bad("t", "p_other"));
        assert!(!bad("t-1_x", "w_1"));
    }
}
