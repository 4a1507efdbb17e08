//! Events of a run, for EventBridge (being written).
