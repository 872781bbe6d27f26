//! Evaluation of detections against labelled data.

pub mod detect;
pub mod labels;
pub mod nab;
