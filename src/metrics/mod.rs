//! Evaluation metrics, one file per metric.

pub mod convergence;
pub mod coverage;
pub mod frechet;
pub mod knn;
pub mod knn_expanded;
pub mod stats;
pub mod w1;
