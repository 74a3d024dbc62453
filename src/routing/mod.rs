//! The routing brain: number normalization, dialing policy, business-hours
//! calendars and the /route decision.
pub mod calendar;
pub mod decide;
pub mod e164;
