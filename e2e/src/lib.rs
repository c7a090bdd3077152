//! End-to-end scenarios (arrive with the charts issue).
