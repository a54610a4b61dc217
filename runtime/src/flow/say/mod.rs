//! What a bot says: texts with variants and languages, `{…}` templates, and
//! Message blocks rendered as Chatlayer messages.

mod render;
pub mod template;
pub mod text;

pub(crate) use render::Renderer;
