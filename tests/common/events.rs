//! Reading back the events a run sent (being written).
