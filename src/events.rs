//! The events of a TaskRun run (being written).
