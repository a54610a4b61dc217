//! The languages code actions' `Intl` has locale data for: the JS runner's
//! `guest-sdk/js-runner/intl/languages.txt`, whose data is embedded in the
//! runner artifact. A bot that declares another language still runs; its
//! `Intl` formats with the root locale (`1,234.5`, ISO-like dates).

use super::Bot;

const LIST: &str = include_str!("../../../../guest-sdk/js-runner/intl/languages.txt");

fn languages() -> impl Iterator<Item = &'static str> {
    LIST.lines()
        .filter(|l| !l.starts_with('#'))
        .flat_map(str::split_whitespace)
}

/// Whether `Intl` has data for `tag` (`nl-BE` counts as `nl`).
pub fn has_data(tag: &str) -> bool {
    let language = tag.split(['-', '_']).next().unwrap_or(tag);
    languages().any(|l| l.eq_ignore_ascii_case(language))
}

/// A note for `sandbot validate` and the log when `bot` has code actions and
/// declares languages that `Intl` has no data for.
pub fn note(bot: &Bot) -> Option<String> {
    if bot.scripts.is_empty() {
        return None;
    }
    let missing: Vec<&str> = bot
        .file
        .languages
        .iter()
        .map(String::as_str)
        .filter(|l| !has_data(l))
        .collect();
    (!missing.is_empty()).then(|| {
        format!(
            "code actions' Intl has no locale data for {} (toLocaleString and Intl.* format with the root locale there); the languages with data are in guest-sdk/js-runner/intl/languages.txt",
            missing.join(", ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::has_data;

    #[test]
    fn languages_and_their_regions_have_data_others_not() {
        for tag in [
            "en", "nl", "nl-BE", "fr_BE", "de-CH", "ja", "pt-BR", "sr-Latn",
        ] {
            assert!(has_data(tag), "{tag}");
        }
        for tag in ["xh", "eo", "yo-NG", ""] {
            assert!(!has_data(tag), "{tag}");
        }
    }
}
