//! What the user says: intents and entities (NLP), fuzzy similarity, and
//! the answers Collect input blocks validate.

pub mod input;
pub mod nlp;
mod similarity;

pub(crate) use similarity::word_similarity;
