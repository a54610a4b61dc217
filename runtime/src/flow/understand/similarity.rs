//! Deterministic fuzzy text similarity for intents and list entities:
//! character trigrams per word (typos) and best-match word alignment
//! (word order does not matter).

use std::collections::HashSet;

/// Lower-cased words, punctuation dropped.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

fn trigrams(word: &str) -> HashSet<[char; 3]> {
    let chars: Vec<char> = std::iter::once(' ')
        .chain(word.chars())
        .chain(std::iter::once(' '))
        .collect();
    chars.windows(3).map(|w| [w[0], w[1], w[2]]).collect()
}

/// Dice coefficient of two words' trigrams: 1.0 for equal words.
pub fn word_similarity(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let (ta, tb) = (trigrams(a), trigrams(b));
    if ta.is_empty() || tb.is_empty() {
        return 0.0;
    }
    2.0 * ta.intersection(&tb).count() as f64 / (ta.len() + tb.len()) as f64
}

fn best(word: &str, among: &[String]) -> f64 {
    among
        .iter()
        .map(|w| word_similarity(word, w))
        .fold(0.0, f64::max)
}

/// How well `input` expresses `example` (0..1): an F-score of the words of
/// each found in the other, weighted towards covering the example (beta 2),
/// so extra words in the input cost less than missing ones.
pub fn phrase_similarity(input: &[String], example: &[String]) -> f64 {
    if input.is_empty() || example.is_empty() {
        return 0.0;
    }
    let recall = example.iter().map(|w| best(w, input)).sum::<f64>() / example.len() as f64;
    let precision = input.iter().map(|w| best(w, example)).sum::<f64>() / input.len() as f64;
    if recall + precision == 0.0 {
        return 0.0;
    }
    5.0 * precision * recall / (4.0 * precision + recall)
}

/// Similarity of two word sequences of the same length, word by word, in order
/// (for entity values inside a sentence).
pub fn aligned_similarity(a: &[String], b: &[String]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return 0.0;
    }
    a.iter()
        .zip(b)
        .map(|(x, y)| word_similarity(x, y))
        .sum::<f64>()
        / a.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim(a: &str, b: &str) -> f64 {
        phrase_similarity(&words(a), &words(b))
    }

    #[test]
    fn typos_and_word_order_score_high_unrelated_low() {
        assert_eq!(sim("Find a meetup", "find a meetup"), 1.0);
        assert!(sim("find a meetpu", "find a meetup") > 0.7);
        assert!(sim("meetup find a", "find a meetup") > 0.99);
        assert!(sim("where can I find a meetup please", "find a meetup") > 0.7);
        assert!(sim("what is the weather", "find a meetup") < 0.4);
    }
}
