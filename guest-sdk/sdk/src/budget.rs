//! What remains of the invocation's budget.

pub use crate::bindings::sandbot::action::budget::BudgetLeft;

/// Fuel, wall time, HTTP calls and memory left.
pub fn remaining() -> BudgetLeft {
    crate::bindings::sandbot::action::budget::remaining()
}
