//! The studio: versions and publishing of bot folders (DRAFT and LIVE side
//! by side), and the code editor's API and page (`/studio`).

pub mod edit;
pub mod versions;
